/**
 * Opaque list cursors (docs/api.md, Lists): the position after the last item of a page, as
 * base64url JSON. A cursor that does not decode is a 400 naming the field.
 */
import { ValidationError } from '@gambit/shared';

export function encodeCursor(pos: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify(pos), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string, field: string): Record<string, string | number> {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, string | number>;
  } catch {
    // reported below
  }
  throw new ValidationError([{ path: field, message: 'not a cursor returned by this API' }]);
}
