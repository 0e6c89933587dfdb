import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import { renderTemplate } from './template.js';

const ctx = {
  inputs: { question: 'Where is my order?', user: { name: 'Ada' }, n: 3 },
  outputs: { classify: 'billing', extract: '{"order":{"id":"A-17","items":[{"sku":"x1"}]},"total":12.5}' },
};

function issues(tpl: string): string[] {
  try {
    renderTemplate(tpl, ctx);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).issues.map((i) => i.path);
  }
  return [];
}

describe('M2 prompts rendered with î: templates', () => {
  it('renders inputs, node outputs and JSON paths into outputs', () => {
    expect(renderTemplate('Q: {{inputs.question}} ({{ inputs.user.name }}, {{inputs.n}})', ctx)).toBe('Q: Where is my order? (Ada, 3)');
    expect(renderTemplate('route={{nodes.classify.output}}', ctx)).toBe('route=billing');
    expect(renderTemplate('{{nodes.extract.output.order.id}} {{nodes.extract.output.total}}', ctx)).toBe('A-17 12.5');
    expect(renderTemplate('{{nodes.extract.output.order.items.0.sku}}', ctx)).toBe('x1');
    expect(renderTemplate('{{nodes.extract.output.order.items}}', ctx)).toBe('[{"sku":"x1"}]');
    expect(renderTemplate('no refs', ctx)).toBe('no refs');
  });

  it('a missing value is a ValidationError naming every bad reference', () => {
    expect(issues('{{inputs.missing}}')).toEqual(['{{inputs.missing}}']);
    expect(issues('{{nodes.nope.output}} and {{inputs.user.age}}')).toEqual(['{{nodes.nope.output}}', '{{inputs.user.age}}']);
    expect(issues('{{nodes.classify.output.field}}')).toEqual(['{{nodes.classify.output.field}}']);
    expect(issues('{{nodes.extract.output.order.missing}}')).toEqual(['{{nodes.extract.output.order.missing}}']);
    expect(issues('{{env.SECRET}}')).toEqual(['{{env.SECRET}}']);
  });
});
