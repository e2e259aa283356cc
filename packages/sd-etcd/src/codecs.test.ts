import type { Instance } from '@sdkit/sd-core';
import { sameInstance } from '@sdkit/sd-core';
import { recordingLogger } from '@sdkit/sd-core/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Codec,
  clip,
  codecs,
  decodeAndLog,
  decodeEntry,
  MAX_ADDRESS_LENGTH,
  MAX_LOGGED_KEY_LENGTH,
  MAX_REASON_LENGTH,
} from './codecs.js';
import {
  garbageValue,
  goodValue,
  HUGE_KINDS,
  hugeValue,
  invalidUtf8Value,
  randomBytesValue,
  type WrongShape,
  wrongShapeJson,
} from './fixtures/bad-values.js';

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
    // Results that are not an instance of this key.
    for (const result of [
      { key: 'other', address: 'a' },
      { key: 'k', address: '' },
      'str' as unknown as Instance,
    ]) {
      expect(
        decodeEntry(
          evil(() => result),
          'k',
          bytes('x'),
        ).ok,
      ).toBe(false);
    }
  });

  it('logs a warning naming the key and codec for unreadable values, debug for "not an endpoint"', () => {
    const logger = recordingLogger();
    expect(decodeAndLog(codecs.etcdNaming, 'svc/bad', bytes('nope'), logger)).toBeUndefined();
    expect(decodeAndLog(codecs.etcdNaming, 'svc/del', bytes('{"Op":1,"Addr":"a"}'), logger)).toBeUndefined();
    expect(decodeAndLog(codecs.etcdNaming, 'svc/ok', bytes('{"Addr":"a"}'), logger)).toEqual({
      key: 'svc/ok',
      address: 'a',
    });
    expect(logger.records.map(({ level, obj }) => ({ level, obj }))).toEqual([
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

// ---------------------------------------------------------------------------------------------------------------
// Bad input. Whatever etcd holds under a prefix, decoding gives a valid instance for the key, or a skip with
// exactly one log line naming the key (cut to a bounded length) and never the value; nothing throws into the
// watch. Encoding refuses what it cannot write with a TypeError naming the key (at the registrar's call site).

describe('bad input: decoding never throws, skips with one bounded warning, never logs the value', () => {
  const all: readonly Codec[] = [codecs.gokit, codecs.etcdNaming, codecs.json, codecs.auto];
  const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  /** Longest a clipped field can be: the limit plus the "… (N characters)" marker. */
  const clipped = (max: number): number => max + 40;
  const MiB = 1024 * 1024;

  /** Keys as a codec may get them: any text, empty (codecs must not care), or far longer than is logged. */
  const anyKey = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.constant(''),
    fc
      .integer({ min: MAX_LOGGED_KEY_LENGTH, max: 4 * MAX_LOGGED_KEY_LENGTH })
      .map((n) => `svc/${'k'.repeat(n)}`),
  );

  interface Checked {
    readonly instance: Instance | undefined;
    readonly level: string | undefined;
    readonly reason: string;
    readonly logged: string;
  }

  /** decodeAndLog with a fresh recording logger, checking the contract for whatever the outcome is. */
  function decodeChecked(codec: Codec, key: string, value: Uint8Array): Checked {
    const logger = recordingLogger();
    let instance: Instance | undefined;
    expect(() => {
      instance = decodeAndLog(codec, key, value, logger);
    }).not.toThrow();
    if (instance !== undefined) {
      expect(logger.records).toEqual([]);
      expect(instance.key).toBe(key);
      expect(typeof instance.address).toBe('string');
      expect(instance.address.length).toBeGreaterThan(0);
      expect(instance.address.length).toBeLessThanOrEqual(MAX_ADDRESS_LENGTH);
      return { instance, level: undefined, reason: '', logged: '' };
    }
    expect(logger.records).toHaveLength(1);
    const { level, obj } = logger.records[0]!;
    // The key (cut), the codec, why, and the value's size: never the value itself.
    expect(Object.keys(obj).sort()).toEqual(['codec', 'key', 'reason', 'valueBytes']);
    expect(obj.key).toBe(clip(key, MAX_LOGGED_KEY_LENGTH));
    expect(obj.codec).toBe(codec.name);
    expect(obj.valueBytes).toBe(value.length);
    const reason = obj.reason as string;
    expect(typeof reason).toBe('string');
    expect(reason.length).toBeLessThanOrEqual(clipped(MAX_REASON_LENGTH));
    // A warning, except for a well-formed "not an endpoint" entry (etcd naming's Op 1), which is debug.
    expect(level).toBe(reason === 'the entry is not an endpoint' ? 'debug' : 'warn');
    return { instance, level, reason, logged: JSON.stringify(logger.records[0]) };
  }

  it('garbage of every kind (random bytes, invalid UTF-8, wrong-shape JSON, empty) under any key', () => {
    let skipped = 0;
    fc.assert(
      fc.property(anyKey, garbageValue, (key, value) => {
        for (const codec of all) if (decodeChecked(codec, key, value).instance === undefined) skipped++;
      }),
      { numRuns: 1000 },
    );
    expect(skipped).toBeGreaterThan(1000); // the generator does produce garbage, not accidental instances
  });

  it('random bytes: gokit reads exactly the valid non-empty UTF-8 ones, as the text; every codec keeps the contract', () => {
    fc.assert(
      fc.property(randomBytesValue, (value) => {
        let text: string | undefined;
        try {
          text = strictUtf8.decode(value);
        } catch {
          text = undefined;
        }
        const out = decodeChecked(codecs.gokit, 'svc/k', value);
        if (text === undefined || text === '') expect(out.instance).toBeUndefined();
        else expect(out.instance?.address).toBe(text);
        for (const codec of all) decodeChecked(codec, 'svc/k', value);
      }),
      { numRuns: 500 },
    );
  });

  it('invalid UTF-8: gokit (and auto, unless the value starts with "{") skip it naming UTF-8', () => {
    fc.assert(
      fc.property(invalidUtf8Value, (value) => {
        expect(() => strictUtf8.decode(value)).toThrow(); // the generator's promise
        const gokit = decodeChecked(codecs.gokit, 'svc/k', value);
        expect(gokit.instance).toBeUndefined();
        expect(gokit.reason).toMatch(/UTF-8/);
        const startsWithBrace = /^[ \t\r\n]*\{/.test(Buffer.from(value).toString('latin1'));
        const auto = decodeChecked(codecs.auto, 'svc/k', value);
        if (!startsWithBrace) expect(auto.reason).toMatch(/UTF-8/);
        decodeChecked(codecs.etcdNaming, 'svc/k', value);
        decodeChecked(codecs.json, 'svc/k', value);
      }),
      { numRuns: 500 },
    );
    // Inside a JSON string, invalid bytes become U+FFFD, as Go's json.Unmarshal reads them (not a skip).
    const value = Buffer.concat([bytes('{"Addr":"10.0.0.1:80'), Buffer.from([0xff]), bytes('"}')]);
    expect(codecs.etcdNaming.decode('k', value)?.address).toBe('10.0.0.1:80\ufffd');
  });

  it('JSON of the wrong shape: each codec skips with the reason its format gives (auto reads non-objects as go-kit strings)', () => {
    const expected: Record<string, Record<WrongShape, RegExp | 'instance'>> = {
      gokit: {
        'not-an-object': 'instance',
        'no-address': 'instance',
        'addr-not-string': 'instance',
        'address-not-string': 'instance',
        'bad-op': 'instance',
        'bad-metadata': 'instance',
      },
      etcdNaming: {
        'not-an-object': /not a JSON object/,
        'no-address': /Addr is missing or not a string/,
        'addr-not-string': /Addr is missing or not a string/,
        'address-not-string': /Addr is missing or not a string/,
        'bad-op': /unknown Op .* \(expected 0 = Add or 1 = Delete\)/,
        'bad-metadata': /Addr is missing or not a string/,
      },
      json: {
        'not-an-object': /not a JSON object/,
        'no-address': /"address" is missing or not a string/,
        'addr-not-string': /"address" is missing or not a string/,
        'address-not-string': /"address" is missing or not a string/,
        'bad-op': /"address" is missing or not a string/,
        'bad-metadata': /"metadata" is not a JSON object/,
      },
      auto: {
        'not-an-object': 'instance',
        'no-address': /neither "Addr" \(etcd naming\) nor "address" \(sdkit json\)/,
        'addr-not-string': /Addr is missing or not a string/,
        'address-not-string': /"address" is missing or not a string/,
        'bad-op': /unknown Op/,
        'bad-metadata': /"metadata" is not a JSON object/,
      },
    };
    const seen = new Set<WrongShape>();
    fc.assert(
      fc.property(wrongShapeJson, ({ kind, text }) => {
        seen.add(kind);
        for (const codec of all) {
          const want = expected[codec.name]![kind];
          const out = decodeChecked(codec, 'svc/k', bytes(text));
          if (want === 'instance') expect(out.instance?.address, `${codec.name} ${text}`).toBe(text);
          else expect(out.reason, `${codec.name} ${text}`).toMatch(want);
        }
      }),
      { numRuns: 600 },
    );
    expect(seen.size).toBe(6);
  });

  it('empty values are skipped by every codec; an empty key is just a key to a codec', () => {
    const reasons = { gokit: /empty/, etcdNaming: /not JSON/, json: /not JSON/, auto: /empty/ };
    for (const codec of all) {
      for (const empty of [new Uint8Array(0), Buffer.alloc(0)]) {
        const out = decodeChecked(codec, 'svc/empty', empty);
        expect(out.instance).toBeUndefined();
        expect(out.reason).toMatch(reasons[codec.name as keyof typeof reasons]);
      }
    }
    fc.assert(
      fc.property(goodValue, ({ value, address }) => {
        const out = decodeChecked(codecs.auto, '', value);
        expect(out.instance).toEqual(expect.objectContaining({ key: '', address }));
      }),
    );
  });

  it('huge values (2 MiB) of every kind: skipped with a short warning that never holds the value, or a valid instance', () => {
    // Expected reason per kind and codec (undefined: a valid instance).
    const tooLong = /characters long \(at most 8192\)/;
    const expected: Record<string, Record<string, RegExp | undefined>> = {
      'random-bytes': { gokit: /UTF-8/, etcdNaming: /not JSON/, json: /not JSON/, auto: /UTF-8/ },
      ascii: { gokit: tooLong, etcdNaming: /not JSON/, json: /not JSON/, auto: tooLong },
      'json-addr': { gokit: tooLong, etcdNaming: tooLong, json: /"address" is missing/, auto: tooLong },
      'json-address': { gokit: tooLong, etcdNaming: /Addr is missing/, json: tooLong, auto: tooLong },
      'json-op': {
        gokit: tooLong,
        etcdNaming: /unknown Op/,
        json: /"address" is missing/,
        auto: /unknown Op/,
      },
      'json-array': {
        gokit: tooLong,
        etcdNaming: /not a JSON object/,
        json: /not a JSON object/,
        auto: tooLong,
      },
      'json-metadata': { gokit: tooLong, etcdNaming: /Addr is missing/, json: undefined, auto: undefined },
    };
    let tried = 0;
    for (const kind of HUGE_KINDS) {
      const value = hugeValue(kind, 2 * MiB, 'x');
      expect(value.length).toBeGreaterThan(2 * MiB - 64);
      for (const codec of all) {
        tried++;
        const want = expected[kind]![codec.name];
        const out = decodeChecked(codec, 'svc/huge', value);
        if (want === undefined) {
          expect(out.instance?.address, `${kind} ${codec.name}`).toBe('10.0.0.1:8080');
          continue;
        }
        expect(out.reason, `${kind} ${codec.name}`).toMatch(want);
        expect(out.logged.length, `${kind} ${codec.name}`).toBeLessThan(1000);
        expect(out.logged).not.toContain('x'.repeat(64));
      }
    }
    expect(tried).toBe(28);
  });

  it(`addresses longer than ${MAX_ADDRESS_LENGTH} characters are skipped, shorter ones kept (the boundary, every codec)`, () => {
    fc.assert(
      fc.property(fc.integer({ min: MAX_ADDRESS_LENGTH - 50, max: MAX_ADDRESS_LENGTH + 50 }), (n) => {
        const address = `h${'x'.repeat(n - 1)}`;
        const inst = { key: 'svc/k', address };
        for (const codec of all) {
          if (n <= MAX_ADDRESS_LENGTH) {
            expect(decodeChecked(codec, 'svc/k', bytes(codec.encode(inst))).instance?.address).toBe(address);
          } else {
            expect(() => codec.encode(inst)).toThrow(TypeError);
            const value = codec === codecs.json ? `{"address":"${address}"}` : `{"Addr":"${address}"}`;
            const out = decodeChecked(codec, 'svc/k', bytes(codec === codecs.gokit ? address : value));
            expect(out.reason).toMatch(tooLongReason);
          }
        }
      }),
      { numRuns: 60 },
    );
  });
  const tooLongReason = /characters long \(at most 8192\)/;

  it('encode refuses what it cannot write with a TypeError naming the key (a clear error at the call site)', () => {
    const address = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.constant(''),
      fc.integer({ min: MAX_ADDRESS_LENGTH + 1, max: MAX_ADDRESS_LENGTH + 100 }).map((n) => 'a'.repeat(n)),
      fc.anything(),
    );
    const metadata = fc.option(
      fc.oneof(
        fc.anything(),
        fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, 1n).map((x) => ({ x })),
      ),
      { nil: undefined },
    );
    let refused = 0;
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), address, metadata, (key, addr, md) => {
        const inst = (
          md === undefined ? { key, address: addr } : { key, address: addr, metadata: md }
        ) as Instance;
        for (const codec of all) {
          let written: unknown;
          try {
            written = codec.encode(inst);
          } catch (e) {
            refused++;
            expect(e).toBeInstanceOf(TypeError);
            expect((e as Error).message).toContain(JSON.stringify(key));
            continue;
          }
          expect(typeof written).toBe('string');
          expect(written).not.toBe('');
          expect(typeof addr === 'string' && addr !== '' && addr.length <= MAX_ADDRESS_LENGTH).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
    expect(refused).toBeGreaterThan(0);
  });

  it('contains codecs that misbehave on bad input: huge messages, unprintable throws, throwing getters, huge addresses', () => {
    const evil = (decode: Codec['decode']): Codec => ({ name: 'evil', decode, encode: () => '' });
    const huge = decodeChecked(
      evil((_k, v) => {
        throw new Error(`cannot read ${Buffer.from(v).toString()}`);
      }),
      'svc/k',
      hugeValue('ascii', MiB),
    );
    expect(huge.reason.startsWith('cannot read xxx')).toBe(true);
    expect(huge.reason).toContain(`(${MiB + 'cannot read '.length} characters)`);
    expect(huge.logged.length).toBeLessThan(1000);

    const unprintable = {
      toString() {
        throw new Error('no');
      },
    };
    expect(
      decodeChecked(
        evil(() => {
          throw unprintable;
        }),
        'svc/k',
        bytes('x'),
      ).reason,
    ).toBe('(unprintable)');
    const getter = decodeChecked(
      evil(
        (key) =>
          ({
            key,
            get address(): string {
              throw new Error('getter');
            },
          }) as Instance,
      ),
      'svc/k',
      bytes('x'),
    );
    expect(getter.reason).toBe('getter');
    expect(
      decodeChecked(
        evil((key) => ({ key, address: 'a'.repeat(MAX_ADDRESS_LENGTH + 1) })),
        'svc/k',
        bytes('x'),
      ).reason,
    ).toMatch(/address of 8193 characters/);
    expect(
      decodeChecked(
        evil(() => ({ key: 'k'.repeat(MiB), address: 'a' })),
        'svc/k',
        bytes('x'),
      ).reason.length,
    ).toBeLessThanOrEqual(clipped(MAX_REASON_LENGTH));
    // A logger that throws does not make decodeAndLog throw.
    const throwing = {
      debug() {},
      info() {},
      warn() {
        throw new Error('logger down');
      },
      error() {},
    };
    expect(decodeAndLog(codecs.json, 'svc/k', bytes('nope'), throwing)).toBeUndefined();
  });

  it('clip: identity up to the limit, else a prefix plus the full length, never splitting a surrogate pair', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), fc.integer({ min: 1, max: 40 }), (s, max) => {
        const out = clip(s, max);
        if (s.length <= max) {
          expect(out).toBe(s);
          return;
        }
        const marker = `… (${s.length} characters)`;
        expect(out.endsWith(marker)).toBe(true);
        const head = out.slice(0, -marker.length);
        expect(s.startsWith(head)).toBe(true);
        expect(head.length).toBeGreaterThanOrEqual(max - 1);
        expect(/\p{Surrogate}/u.test(head)).toBe(false); // s has no lone surrogates, so neither may the cut
      }),
    );
  });
});
