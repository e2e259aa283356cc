import type { Instance } from '@sdkit/sd-core';
import { sameInstance } from '@sdkit/sd-core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Codec, codecs, decodeAndLog, decodeEntry } from './codecs.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('codecs.gokit', () => {
  it('reads the value as the instance string, as go-kit writes it', () => {
    expect(codecs.gokit.decode('/services/foosvc/1.2.3.4:8080', bytes('http://1.2.3.4:8080'))).toEqual({
      key: '/services/foosvc/1.2.3.4:8080',
      address: 'http://1.2.3.4:8080',
    });
  });

  it('writes exactly the address', () => {
    expect(
      codecs.gokit.encode({ key: '/services/foosvc/1.2.3.4:8080', address: 'http://1.2.3.4:8080' }),
    ).toBe('http://1.2.3.4:8080');
  });

  it('keeps the value as-is (no trimming), rejects empty values and invalid UTF-8', () => {
    expect(codecs.gokit.decode('k', bytes(' http://x:1\n'))?.address).toBe(' http://x:1\n');
    expect(() => codecs.gokit.decode('k', new Uint8Array())).toThrow(/empty/);
    expect(() => codecs.gokit.decode('k', new Uint8Array([0x68, 0xff, 0xfe]))).toThrow(/UTF-8/);
  });

  it('refuses to encode an empty address', () => {
    expect(() => codecs.gokit.encode({ key: 'k', address: '' })).toThrow(TypeError);
  });
});

describe('codecs.etcdNaming', () => {
  it('reads the etcd docs example value (no Op, string Metadata)', () => {
    const inst = codecs.etcdNaming.decode('my-service/1.2.3.4', bytes('{"Addr":"1.2.3.4","Metadata":"..."}'));
    expect(inst).toEqual({ key: 'my-service/1.2.3.4', address: '1.2.3.4', metadata: { metadata: '...' } });
  });

  it('writes byte-for-byte what Go json.Marshal(naming.Update{Op: Add, Addr, Metadata: nil}) writes', () => {
    expect(codecs.etcdNaming.encode({ key: 'my-service/1.2.3.4:50051', address: '1.2.3.4:50051' })).toBe(
      '{"Op":0,"Addr":"1.2.3.4:50051","Metadata":null}',
    );
  });

  it('writes a string Metadata back raw, and object metadata with Go-sorted keys', () => {
    expect(codecs.etcdNaming.encode({ key: 'k', address: '1.2.3.4', metadata: { metadata: '...' } })).toBe(
      '{"Op":0,"Addr":"1.2.3.4","Metadata":"..."}',
    );
    expect(
      codecs.etcdNaming.encode({
        key: 'k',
        address: '1.2.3.4:50051',
        metadata: { zone: 'eu-1', weight: 10, tags: ['a', 'b'], nested: { b: true, a: null } },
      }),
    ).toBe(
      '{"Op":0,"Addr":"1.2.3.4:50051","Metadata":{"nested":{"a":null,"b":true},"tags":["a","b"],"weight":10,"zone":"eu-1"}}',
    );
  });

  it("escapes like Go's encoder (HTML-safe, U+2028/9, short control escapes, lone surrogates, -0)", () => {
    const md = {
      s: 'a<b>&c\u2028\u2029\b\f\n\r\t\u0001\u001f"\\\u007f\ud800x\udc00é😀',
      z: -0,
      big: 1e21,
      tiny: 1e-7,
    };
    expect(codecs.etcdNaming.encode({ key: 'k', address: 'h&x', metadata: md })).toBe(
      '{"Op":0,"Addr":"h\\u0026x","Metadata":{"big":1e+21,"s":"a\\u003cb\\u003e\\u0026c\\u2028\\u2029\\b\\f\\n\\r\\t\\u0001\\u001f\\"\\\\\u007f\\ufffdx\\ufffdé😀","tiny":1e-7,"z":-0}}',
    );
  });

  it('sorts metadata keys by UTF-8 bytes, as Go sorts map keys (not by UTF-16 code units)', () => {
    // U+FF21 (3 UTF-8 bytes, EF BC A1) sorts before U+1F600 (F0 9F 98 80) in UTF-8, after it in UTF-16.
    expect(codecs.etcdNaming.encode({ key: 'k', address: 'a', metadata: { '😀': 1, Ａ: 2 } })).toBe(
      '{"Op":0,"Addr":"a","Metadata":{"Ａ":2,"😀":1}}',
    );
  });

  it('refuses metadata Go could not marshal', () => {
    expect(() => codecs.etcdNaming.encode({ key: 'k', address: 'a', metadata: { x: Number.NaN } })).toThrow(
      TypeError,
    );
    expect(() => codecs.etcdNaming.encode({ key: 'k', address: 'a', metadata: { x: 1n } })).toThrow(
      TypeError,
    );
  });

  it('reads Op 0 / absent as an endpoint, Op 1 (Delete) as "not an endpoint", other Ops as unreadable', () => {
    expect(codecs.etcdNaming.decode('k', bytes('{"Op":0,"Addr":"a:1","Metadata":null}'))).toEqual({
      key: 'k',
      address: 'a:1',
    });
    expect(codecs.etcdNaming.decode('k', bytes('{"Op":1,"Addr":"a:1"}'))).toBeUndefined();
    expect(() => codecs.etcdNaming.decode('k', bytes('{"Op":7,"Addr":"a:1"}'))).toThrow(/Op/);
    expect(() => codecs.etcdNaming.decode('k', bytes('{"Op":"add","Addr":"a:1"}'))).toThrow(/Op/);
  });

  it('matches field names case-insensitively, last duplicate wins, like Go json.Unmarshal', () => {
    expect(codecs.etcdNaming.decode('k', bytes('{"addr":"x:1","ADDR":"y:2","metadata":{"w":1}}'))).toEqual({
      key: 'k',
      address: 'y:2',
      metadata: { w: 1 },
    });
  });

  it('wraps non-object Metadata under `metadata`', () => {
    expect(codecs.etcdNaming.decode('k', bytes('{"Addr":"a","Metadata":[1,2]}'))?.metadata).toEqual({
      metadata: [1, 2],
    });
    expect(codecs.etcdNaming.decode('k', bytes('{"Addr":"a","Metadata":3}'))?.metadata).toEqual({
      metadata: 3,
    });
  });

  it('rejects values that are not naming entries', () => {
    for (const v of ['', 'http://1.2.3.4', '[]', '"x"', '{}', '{"Addr":""}', '{"Addr":5}', '{"Addr":"a"']) {
      expect(() => codecs.etcdNaming.decode('k', bytes(v)), v).toThrow();
    }
  });
});

describe('codecs.json', () => {
  it('reads and writes {"address","metadata"}', () => {
    const inst = { key: 'k', address: 'http://a:1', metadata: { zone: 'a' } };
    expect(codecs.json.encode(inst)).toBe('{"address":"http://a:1","metadata":{"zone":"a"}}');
    expect(codecs.json.encode({ key: 'k', address: 'a:1' })).toBe('{"address":"a:1"}');
    expect(codecs.json.decode('k', bytes('{"address":"http://a:1","metadata":{"zone":"a"},"v":2}'))).toEqual(
      inst,
    );
    expect(codecs.json.decode('k', bytes('{"address":"a:1","metadata":null}'))).toEqual({
      key: 'k',
      address: 'a:1',
    });
  });

  it('rejects bad shapes and non-JSON metadata', () => {
    for (const v of [
      '{"Address":"a"}',
      '{"address":""}',
      '{"address":"a","metadata":[1]}',
      '{"address":"a","metadata":"x"}',
      'a',
    ]) {
      expect(() => codecs.json.decode('k', bytes(v)), v).toThrow();
    }
    expect(() =>
      codecs.json.encode({ key: 'k', address: 'a', metadata: { x: Number.POSITIVE_INFINITY } }),
    ).toThrow(TypeError);
  });
});

describe('codecs.auto', () => {
  it('reads gokit, etcd naming and json values', () => {
    expect(codecs.auto.decode('k', bytes('http://1.2.3.4:8080'))).toEqual({
      key: 'k',
      address: 'http://1.2.3.4:8080',
    });
    expect(codecs.auto.decode('k', bytes(' \n{"Op":0,"Addr":"1.2.3.4:50051","Metadata":{"z":1}}'))).toEqual({
      key: 'k',
      address: '1.2.3.4:50051',
      metadata: { z: 1 },
    });
    expect(codecs.auto.decode('k', bytes('{"address":"a:1","metadata":{"z":1}}'))).toEqual({
      key: 'k',
      address: 'a:1',
      metadata: { z: 1 },
    });
    expect(codecs.auto.decode('k', bytes('{"Op":1,"Addr":"a"}'))).toBeUndefined();
  });

  it('rejects a JSON object it does not recognise, and broken JSON', () => {
    expect(() => codecs.auto.decode('k', bytes('{"host":"a"}'))).toThrow(/neither/);
    expect(() => codecs.auto.decode('k', bytes('{"Addr":'))).toThrow(/not JSON/);
  });

  it('writes gokit strings for plain instances and json otherwise', () => {
    expect(codecs.auto.encode({ key: 'k', address: 'http://a:1' })).toBe('http://a:1');
    expect(codecs.auto.encode({ key: 'k', address: 'a:1', metadata: { z: 1 } })).toBe(
      '{"address":"a:1","metadata":{"z":1}}',
    );
    expect(codecs.auto.encode({ key: 'k', address: ' {weird}' })).toBe('{"address":" {weird}"}');
  });
});

describe('decodeEntry / decodeAndLog (the instancer-level wrapper)', () => {
  const all: Codec[] = [codecs.gokit, codecs.etcdNaming, codecs.json, codecs.auto];

  it('never throws for arbitrary bytes, and whatever it accepts is a valid instance for that key', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.uint8Array({ maxLength: 64 }), (key, value) => {
        for (const codec of all) {
          const out = decodeEntry(codec, key, value);
          if (out.ok) {
            expect(out.instance.key).toBe(key);
            expect(out.instance.address).not.toBe('');
          } else expect(typeof out.reason).toBe('string');
        }
      }),
      { numRuns: 500 },
    );
  });

  it('never throws for arbitrary JSON text (the shapes codecs look into)', () => {
    fc.assert(
      fc.property(fc.json(), (text) => {
        for (const codec of all) decodeEntry(codec, 'k', bytes(text));
        decodeEntry(codecs.auto, 'k', bytes(`{"Addr":${text},"Op":${text},"Metadata":${text}}`));
        decodeEntry(codecs.auto, 'k', bytes(`{"address":${text},"metadata":${text}}`));
      }),
    );
  });

  it('contains misbehaving codecs: throwing non-errors, wrong key, no address', () => {
    const evil = (decode: Codec['decode']): Codec => ({ name: 'evil', decode, encode: () => '' });
    expect(
      decodeEntry(
        evil(() => {
          throw 'boom';
        }),
        'k',
        bytes('x'),
      ),
    ).toEqual({ ok: false, reason: 'boom', warn: true });
    expect(
      decodeEntry(
        evil(() => ({ key: 'other', address: 'a' })),
        'k',
        bytes('x'),
      ).ok,
    ).toBe(false);
    expect(
      decodeEntry(
        evil(() => ({ key: 'k', address: '' })),
        'k',
        bytes('x'),
      ).ok,
    ).toBe(false);
    expect(
      decodeEntry(
        evil(() => 'str' as unknown as Instance),
        'k',
        bytes('x'),
      ).ok,
    ).toBe(false);
  });

  it('logs a warning naming the key and codec for unreadable values, debug for "not an endpoint"', () => {
    const logs: { level: string; obj: object }[] = [];
    const logger = {
      debug: (obj: object) => logs.push({ level: 'debug', obj }),
      info: (obj: object) => logs.push({ level: 'info', obj }),
      warn: (obj: object) => logs.push({ level: 'warn', obj }),
      error: (obj: object) => logs.push({ level: 'error', obj }),
    };
    expect(decodeAndLog(codecs.etcdNaming, 'svc/bad', bytes('nope'), logger)).toBeUndefined();
    expect(decodeAndLog(codecs.etcdNaming, 'svc/del', bytes('{"Op":1,"Addr":"a"}'), logger)).toBeUndefined();
    expect(decodeAndLog(codecs.etcdNaming, 'svc/ok', bytes('{"Addr":"a"}'), logger)).toEqual({
      key: 'svc/ok',
      address: 'a',
    });
    expect(logs).toEqual([
      { level: 'warn', obj: expect.objectContaining({ key: 'svc/bad', codec: 'etcdNaming' }) },
      { level: 'debug', obj: expect.objectContaining({ key: 'svc/del', codec: 'etcdNaming' }) },
    ]);
  });
});

describe('round trips', () => {
  // Strings without lone surrogates (which no UTF-8 value can carry).
  const text = (min = 0) => fc.string({ unit: 'binary', minLength: min, maxLength: 20 });
  const metadataObject = fc.dictionary(text(), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 });
  const key = text(1);
  const plain = fc.record({ key, address: text(1) });
  const withMetadata = fc.record({
    key,
    address: text(1),
    metadata: fc.oneof(
      metadataObject,
      fc
        .jsonValue({ maxDepth: 2 })
        .filter((v) => v !== null && (typeof v !== 'object' || Array.isArray(v)))
        .map((v) => ({ metadata: v })),
    ),
  });
  // JSON.stringify writes -0 as 0 (documented for codecs.json); the Go encoder keeps "-0".
  const hasNegativeZero = (v: unknown): boolean =>
    Object.is(v, -0) || (typeof v === 'object' && v !== null && Object.values(v).some(hasNegativeZero));
  const roundTrips = (codec: Codec, via: Codec, inst: Instance): void => {
    const out = via.decode(inst.key, bytes(codec.encode(inst)));
    expect(out).toBeDefined();
    expect(sameInstance(out!, inst), `${codec.encode(inst)} → ${JSON.stringify(out)}`).toBe(true);
  };

  it('gokit: decode(encode(i)) = i, and auto reads it unless it looks like JSON', () => {
    fc.assert(
      fc.property(plain, (inst) => {
        roundTrips(codecs.gokit, codecs.gokit, inst);
        if (!/^[ \t\r\n]*\{/.test(inst.address)) roundTrips(codecs.gokit, codecs.auto, inst);
      }),
    );
  });

  it('etcdNaming: decode(encode(i)) = i, also through auto', () => {
    fc.assert(
      fc.property(fc.oneof(plain, withMetadata), (inst) => {
        roundTrips(codecs.etcdNaming, codecs.etcdNaming, inst);
        roundTrips(codecs.etcdNaming, codecs.auto, inst);
      }),
    );
  });

  it('json and auto: decode(encode(i)) = i', () => {
    fc.assert(
      fc.property(fc.oneof(plain, fc.record({ key, address: text(1), metadata: metadataObject })), (inst) => {
        fc.pre(!hasNegativeZero(inst));
        roundTrips(codecs.json, codecs.json, inst);
        roundTrips(codecs.json, codecs.auto, inst);
        roundTrips(codecs.auto, codecs.auto, inst);
      }),
    );
  });

  it("etcdNaming's Go encoding equals JSON.stringify with sorted keys when no character needs Go's extra escaping", () => {
    // Model: JSON.stringify with object keys in UTF-8 byte order (JS objects cannot hold that order themselves:
    // integer-like keys always come first).
    const model = (v: unknown): string => {
      if (Array.isArray(v)) return `[${v.map(model).join(',')}]`;
      if (v === null || typeof v !== 'object') return JSON.stringify(v);
      const keys = Object.keys(v).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      return `{${keys.map((k) => `${JSON.stringify(k)}:${model((v as Record<string, unknown>)[k])}`).join(',')}}`;
    };
    fc.assert(
      fc.property(withMetadata, (inst) => {
        const encoded = codecs.etcdNaming.encode(inst);
        fc.pre(!/[<>&\u2028\u2029]/.test(JSON.stringify(inst)) && !hasNegativeZero(inst));
        const md = inst.metadata;
        const unwrapped =
          Object.keys(md).length === 1 &&
          'metadata' in md &&
          md.metadata !== null &&
          (typeof md.metadata !== 'object' || Array.isArray(md.metadata));
        const expected = `{"Op":0,"Addr":${JSON.stringify(inst.address)},"Metadata":${model(unwrapped ? md.metadata : md)}}`;
        expect(encoded).toBe(expected);
      }),
    );
  });
});
