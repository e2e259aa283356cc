/**
 * `pnpm bench [--quick]` — runs sdkit's benchmarks and writes bench/results/latest.json and latest.md.
 * These are measurements, never test assertions; compare ratios across runs, machines are noisy.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { canMeasureAllocation } from './measure.js';
import { benchPicks, benchPipeline } from './picks.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const quick = values.quick ?? false;
const resultsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');
const say = (line: string) => process.stdout.write(`${line}\n`);

if (!canMeasureAllocation) say('note: run node with --expose-gc to measure allocation');
say(`sdkit benchmarks${quick ? ' (quick)' : ''} — node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'}`);

const picks = benchPicks([10, 1_000, 10_000], quick);
const pipeline = await benchPipeline(quick);

const machine = {
  date: new Date().toISOString(),
  node: process.version,
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  quick,
};
const results = { machine, picks, pipeline };

const fmt = (n: number, d = 1) => (Number.isNaN(n) ? 'n/a' : n.toFixed(d));
const md = [
  `Measured ${machine.date.slice(0, 10)} on ${machine.cpu} (${machine.cores} cores), Node ${machine.node}${quick ? ', quick mode' : ''}.`,
  '',
  '### Pick cost',
  '',
  '| balancer | endpoints | ns / pick | bytes / pick |',
  '| --- | ---: | ---: | ---: |',
  ...picks.map((p) => `| ${p.balancer} | ${p.endpoints} | ${fmt(p.nsPerPick)} | ${fmt(p.bytesPerPick, 2)} |`),
  '',
  '### Pipeline overhead',
  '',
  '| call | ns / call |',
  '| --- | ---: |',
  `| no-op endpoint, direct | ${fmt(pipeline.directNs)} |`,
  `| retry(roundRobin(endpointer)) | ${fmt(pipeline.pipelineNs)} |`,
  `| overhead | ${fmt(pipeline.overheadNs)} (${fmt(pipeline.pipelineNs / pipeline.directNs, 2)}×) |`,
  '',
].join('\n');

await mkdir(resultsDir, { recursive: true });
await writeFile(join(resultsDir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
await writeFile(join(resultsDir, 'latest.md'), md);
say(md);
say(`wrote ${join(resultsDir, 'latest.json')} and latest.md`);
