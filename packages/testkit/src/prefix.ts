/** A unique key prefix per test, so tests share one Redis without touching each other's keys. */
import { randomBytes } from 'node:crypto';

export function uniquePrefix(label = 't'): string {
  const safe = label.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 40);
  return `gt:${safe}:${randomBytes(4).toString('hex')}`;
}
