/**
 * `pnpm demo` — three HTTP services register, a client balances calls over them with retries, one service crashes
 * and a new one starts; the demo prints what happened and exits 0 when no call failed.
 *
 * Backend: `--backend=memory|etcd|auto` (or SDKIT_DEMO_BACKEND); `auto` (the default) uses etcd when one is
 * available — ETCD_ENDPOINTS, or an etcd binary (ETCD_BIN or PATH) the demo starts in a temp dir — and the
 * embedded MemoryRegistry otherwise. `--transport=grpc|http` (or SDKIT_DEMO_TRANSPORT; default grpc): how the
 * demo's clients talk to etcd — gRPC, or etcd's HTTP/JSON gateway over fetch. LOG_LEVEL sets the pino level of
 * sdkit's own logs (default "warn").
 */
import { parseArgs } from 'node:util';
import pino from 'pino';
import { chooseBackend } from './choose-backend.js';
import { runScenario } from './scenario.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: process.env.SDKIT_DEMO_BACKEND ?? 'auto' },
    transport: { type: 'string', default: process.env.SDKIT_DEMO_TRANSPORT ?? 'grpc' },
  },
});
const logger = pino({ level: process.env.LOG_LEVEL ?? 'warn' }, pino.destination(2));
const say = (line: string) => process.stdout.write(`${line}\n`);

const backend = await chooseBackend(String(values.backend), logger, say, String(values.transport));
say(`sdkit demo — backend: ${backend.description}\n`);

const deadline = setTimeout(() => {
  say('demo: gave up after 60 s (a step never happened); this is a bug, please report it');
  process.exit(1);
}, 60_000);
deadline.unref();

let exitCode = 1;
try {
  const result = await runScenario({ backend, log: say });
  say('\nsummary');
  for (const [name, count] of [...result.perService].sort())
    say(`  ${name.padEnd(8)} ${String(count).padStart(6)} calls`);
  say(`  calls ${result.calls}, retries ${result.retries}, failures ${result.failures}`);
  say(`  ${(result.elapsedMs / 1000).toFixed(1)} s on ${backend.description}`);
  for (const sample of result.failureSamples) say(`  failure: ${sample}`);
  exitCode = result.failures === 0 ? 0 : 1;
  say(exitCode === 0 ? '\nok: no call failed' : '\nFAILED: some calls failed');
} finally {
  clearTimeout(deadline);
  await backend.close();
}
process.exitCode = exitCode;
