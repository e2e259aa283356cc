import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LineSplitter } from './line-splitter.js';

describe('LineSplitter', () => {
  it('returns complete lines only, keeping the rest for the next chunk', () => {
    const s = new LineSplitter(1000);
    expect(s.push(Buffer.from('{"a":1}\n{"b"'))).toEqual(['{"a":1}']);
    expect(s.pending).toBe(4);
    expect(s.push(Buffer.from(':2}\n\r\n{"c":3}\r\n'))).toEqual(['{"b":2}', '{"c":3}']);
    expect(s.pending).toBe(0);
  });

  it('decodes multi-byte characters split across chunks', () => {
    const s = new LineSplitter(1000);
    const bytes = Buffer.from('"zoné-ü-😀"\n');
    const out: string[] = [];
    for (let i = 0; i < bytes.length; i++) out.push(...s.push(bytes.subarray(i, i + 1)));
    expect(out).toEqual(['"zoné-ü-😀"']);
  });

  it('throws past maxLineBytes, also before the line ends', () => {
    expect(() => new LineSplitter(4).push(Buffer.from('12345\n'))).toThrow(RangeError);
    const s = new LineSplitter(4);
    s.push(Buffer.from('123'));
    expect(() => s.push(Buffer.from('45'))).toThrow(/longer than the 4 accepted/);
  });

  it('gives the same lines whatever the chunk boundaries (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ unit: 'grapheme', maxLength: 20 }).filter((l) => !/[\r\n]/.test(l) && l !== ''),
          {
            maxLength: 10,
          },
        ),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 10 }),
        (lines, cuts) => {
          const bytes = Buffer.from(lines.map((l) => `${l}\n`).join(''));
          const s = new LineSplitter(10_000);
          const out: string[] = [];
          let at = 0;
          for (let i = 0; at < bytes.length; i++) {
            const size = cuts[i % cuts.length]!;
            out.push(...s.push(bytes.subarray(at, at + size)));
            at += size;
          }
          expect(out).toEqual(lines);
        },
      ),
    );
  });
});
