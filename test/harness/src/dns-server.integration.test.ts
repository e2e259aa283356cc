import { Resolver } from 'node:dns/promises';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startDnsServer } from './dns-server.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Node's own resolver (c-ares), asking `server` once. */
function resolverFor(server: string): Resolver {
  const resolver = new Resolver({ timeout: 1_000, tries: 1 });
  resolver.setServers([server]);
  return resolver;
}

describe('startDnsServer', () => {
  it('serves its zone on 127.0.0.1 and ::1; updates apply at once and survive a restart; close cleans up', async () => {
    const dns = await startDnsServer({ name: 'harness', records: ['_x._tcp 7 IN SRV 1 2 3 a'] });
    let pid = dns.pid;
    try {
      expect(dns.server).toBe(`127.0.0.1:${dns.port}`);
      expect(dns.server6).toBe(`[::1]:${dns.port}`);
      // Node 24 adds `type: 'SRV'` to each record; compare the record's own fields.
      const srv = await resolverFor(dns.server6).resolveSrv(`_x._tcp.${dns.zone}`);
      expect(srv.map(({ name, port, priority, weight }) => ({ name, port, priority, weight }))).toEqual([
        { name: `a.${dns.zone.slice(0, -1)}`, port: 3, priority: 1, weight: 2 },
      ]);

      await dns.update(`update add b.${dns.zone} 5 IN A 127.0.0.2`);
      expect(await resolverFor(dns.server).resolve4(`b.${dns.zone}`)).toEqual(['127.0.0.2']);
      await dns.stop();
      await dns.start();
      expect(await resolverFor(dns.server).resolve4(`b.${dns.zone}`)).toEqual(['127.0.0.2']);

      await dns.setZoneLoads(false);
      await expect(resolverFor(dns.server).resolve4(`b.${dns.zone}`)).rejects.toMatchObject({
        code: 'ESERVFAIL',
      });
      await dns.setZoneLoads(true);
      expect(await resolverFor(dns.server).resolve4(`b.${dns.zone}`)).toEqual(['127.0.0.2']);

      await expect(dns.update('update add nonsense')).rejects.toThrow(/nsupdate failed/);
      pid = dns.pid;
    } finally {
      await dns.close();
    }
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid!)).toBe(false);
    expect(existsSync(dirname(dns.logFile))).toBe(false);
  });
});
