/**
 * The command-line host of a scenario, for Deno and Bun: reads a {@link ScenarioCall} as JSON from the first
 * argument, prints each record as one JSON line on stdout, and runs until the process is killed. A failure prints
 * a `failed` record and exits with code 1. The host holds the process open itself (a ref'd interval), as a
 * server's listener would: sdkit's background upkeep (keep-alives, watch reconnects) never holds a process.
 * @module
 */
import { type RuntimeRecord, runScenario, type ScenarioCall, type Scenarios } from './protocol.js';

interface DenoLike {
  readonly args: readonly string[];
  exit(code: number): never;
}
interface ProcessLike {
  readonly argv: readonly string[];
  exit(code: number): never;
}

const host = globalThis as { Deno?: DenoLike; Bun?: unknown; process?: ProcessLike };

function runtimeName(): string {
  if (host.Deno) return 'deno';
  if (host.Bun) return 'bun';
  return 'node';
}

function args(): readonly string[] {
  if (host.Deno) return host.Deno.args;
  return host.process?.argv.slice(2) ?? [];
}

function exit(code: number): never {
  if (host.Deno) host.Deno.exit(code);
  if (host.process) host.process.exit(code);
  throw new Error(`exit ${code}`);
}

function emit(record: RuntimeRecord): void {
  console.log(JSON.stringify(record));
}

/** Runs the scenario named by the command line with `scenarios`; never returns. */
export async function runCli(scenarios: Scenarios): Promise<never> {
  const controller = new AbortController();
  const hold = setInterval(() => {}, 60_000);
  try {
    const call = JSON.parse(args()[0] ?? '') as ScenarioCall;
    emit({ type: 'started', runtime: runtimeName() });
    await runScenario(scenarios, call, emit, controller.signal);
    emit({ type: 'failed', message: `${scenarios.name}: scenario ${call.scenario} ended by itself` });
  } catch (err) {
    emit({ type: 'failed', message: `${scenarios.name}: ${err instanceof Error ? err.stack : String(err)}` });
  }
  clearInterval(hold);
  return exit(1);
}
