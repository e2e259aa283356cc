import { describe, expect, it } from 'vitest';
import { inst } from './fixtures/fake-io.js';
import { clipLine, formatTable } from './format-table.js';

describe('formatTable', () => {
  it('pads KEY and ADDRESS to their widest cell; metadata is compact JSON', () => {
    expect(
      formatTable([
        inst('svc/10.0.0.1:8080', '10.0.0.1:8080', { zone: 'a' }),
        inst('svc/10.0.0.22:8080', 'http://10.0.0.22:8080'),
      ]),
    ).toEqual([
      'KEY                  ADDRESS                 METADATA',
      'svc/10.0.0.1:8080    10.0.0.1:8080           {"zone":"a"}',
      'svc/10.0.0.22:8080   http://10.0.0.22:8080',
    ]);
  });

  it('is only the header for an empty set', () => {
    expect(formatTable([])).toEqual(['KEY   ADDRESS   METADATA']);
  });

  it('escapes control characters from the registry, so a key cannot drive the terminal', () => {
    const [, line] = formatTable([inst('svc/\u001b[2Jevil', 'a\u0007b')]);
    expect(line).toBe('svc/\\x1b[2Jevil   a\\x07b');
    expect([...line!].some((c) => c.charCodeAt(0) < 0x20)).toBe(false);
  });

  it('cuts lines to a width, ending in …', () => {
    expect(formatTable([inst('k', 'a'.repeat(50))], { width: 20 })[1]).toBe(`k     ${'a'.repeat(13)}…`);
    expect(clipLine('abc', 3)).toBe('abc');
    expect(clipLine('abcd', 3)).toBe('ab…');
  });
});
