/**
 * Hand-written SVG charts of the tail-latency benchmark (no plotting dependency): latency by percentile per
 * strategy on log scales, and figures over time.
 */

/** One line of a percentile plot: `points` are [percentile in [0, 100), latency ms], percentiles ascending. */
export interface Curve {
  readonly label: string;
  readonly points: readonly (readonly [number, number])[];
  readonly color: string;
  /** SVG `stroke-dasharray`, or undefined for a solid line. */
  readonly dash?: string;
}

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const f1 = (n: number) => (Math.round(n * 10) / 10).toString();

/** "Nines" of a percentile: 0 → 0, 90 → 1, 99 → 2, 99.9 → 3 (the x axis of a percentile plot). */
export function nines(percentile: number): number {
  return -Math.log10(1 - percentile / 100);
}

/** Percentiles at which curves are sampled for plotting: evenly in nines, up to `maxNines`. */
export function plotPercentiles(maxNines: number, perNine = 20): number[] {
  const out: number[] = [];
  for (let i = 0; i <= maxNines * perNine; i++) out.push(100 * (1 - 10 ** (-i / perNine)));
  return out;
}

/** The largest of 1, 2, 5 × 10^k that is ≤ v. */
function logFloor(v: number): number {
  const e = 10 ** Math.floor(Math.log10(v));
  return [5, 2, 1].map((m) => m * e).find((c) => c <= v * 1.0001) ?? e;
}

/** The smallest of 1, 2, 5 × 10^k that is ≥ v. */
function logCeil(v: number): number {
  const e = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * e).find((c) => c >= v * 0.9999) ?? 10 * e;
}

/** `text` in lines of at most about `max` characters, broken at spaces. */
function wrap(text: string, max = 118): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > max) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/** The title and the (wrapped) subtitle at `x`; returns the SVG lines and the height they take. */
function heading(x: number, title: string, subtitle: string): { lines: string[]; height: number } {
  const sub = wrap(subtitle);
  return {
    lines: [
      `<text x="${x}" y="22" font-size="15" font-weight="600">${esc(title)}</text>`,
      ...sub.map((l, i) => `<text x="${x}" y="${40 + 15 * i}" fill="#555">${esc(l)}</text>`),
    ],
    height: 40 + 15 * (sub.length - 1),
  };
}

/** Round tick values 1, 2, 5 × 10^k within [lo, hi]. */
function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push(v);
    }
  }
  return ticks;
}

/**
 * A percentile plot (as HdrHistogram draws them): x = percentile, spaced by nines (50 %, 90 %, 99 %, 99.9 % …),
 * y = latency in ms on a log scale; one line per curve, a legend on the right.
 */
export function percentilePlot(title: string, subtitle: string, curves: readonly Curve[]): string {
  const width = 900;
  const left = 64;
  const right = 300;
  const head = heading(left, title, subtitle);
  const top = head.height + 16;
  const bottom = 52;
  const height = top + 332 + bottom;
  const pw = width - left - right;
  const ph = height - top - bottom;
  const all = curves.flatMap((c) => c.points.map(([, ms]) => ms)).filter((ms) => ms > 0);
  const maxX = Math.max(1, ...curves.flatMap((c) => c.points.map(([p]) => nines(p))));
  const yLo = logFloor(Math.max(0.01, Math.min(...all)));
  const yHi = logCeil(Math.max(...all));
  const x = (p: number) => left + (nines(p) / maxX) * pw;
  const y = (ms: number) =>
    top + ph - ((Math.log10(Math.max(ms, yLo)) - Math.log10(yLo)) / (Math.log10(yHi) - Math.log10(yLo))) * ph;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" ${FONT} font-size="12">`,
    `<title>${esc(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...head.lines,
  ];
  for (const v of logTicks(yLo, yHi)) {
    const yy = f1(y(v));
    out.push(
      `<line x1="${left}" x2="${left + pw}" y1="${yy}" y2="${yy}" stroke="#e4e4e4"/>`,
      `<text x="${left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle" fill="#444">${v >= 1 ? v : v.toPrecision(1)}</text>`,
    );
  }
  for (const p of [0, 50, 90, 99, 99.9, 99.99, 99.999]) {
    if (nines(p) > maxX + 1e-9) continue;
    const xx = f1(x(p));
    out.push(
      `<line x1="${xx}" x2="${xx}" y1="${top}" y2="${top + ph}" stroke="#e4e4e4"/>`,
      `<text x="${xx}" y="${top + ph + 16}" text-anchor="middle" fill="#444">${p === 0 ? 'p0' : `p${p}`}</text>`,
    );
  }
  out.push(
    `<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`,
    `<text x="${left + pw / 2}" y="${height - 12}" text-anchor="middle" fill="#333">percentile (log scale of 1 / (1 − p))</text>`,
    `<text transform="translate(16 ${top + ph / 2}) rotate(-90)" text-anchor="middle" fill="#333">latency, ms (log scale)</text>`,
  );
  for (const c of curves) {
    const d = c.points.map(([p, ms], i) => `${i === 0 ? 'M' : 'L'}${f1(x(p))} ${f1(y(ms))}`).join(' ');
    out.push(
      `<path d="${d}" fill="none" stroke="${c.color}" stroke-width="1.8"${c.dash ? ` stroke-dasharray="${c.dash}"` : ''}/>`,
    );
  }
  curves.forEach((c, i) => {
    const ly = top + 8 + i * 19;
    const lx = left + pw + 16;
    out.push(
      `<line x1="${lx}" x2="${lx + 30}" y1="${ly}" y2="${ly}" stroke="${c.color}" stroke-width="2.2"${c.dash ? ` stroke-dasharray="${c.dash}"` : ''}/>`,
      `<text x="${lx + 38}" y="${ly}" dominant-baseline="middle">${esc(c.label)}</text>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}

/** One line of {@link linePlot}: [x, y] points, x ascending. */
export interface Series {
  readonly label: string;
  readonly points: readonly (readonly [number, number])[];
  readonly color: string;
  readonly dash?: string;
}

/** A line chart on linear axes from 0, with dashed horizontal reference lines at `marks`; a legend on the right. */
export function linePlot(
  title: string,
  subtitle: string,
  series: readonly Series[],
  axes: { readonly x: string; readonly y: string; readonly xMax?: number; readonly yMax?: number },
  marks: readonly { readonly value: number; readonly label: string }[] = [],
): string {
  const width = 900;
  const left = 64;
  const right = 300;
  const head = heading(left, title, subtitle);
  const top = head.height + 16;
  const bottom = 52;
  const height = top + 332 + bottom;
  const pw = width - left - right;
  const ph = height - top - bottom;
  const xs = series.flatMap((s) => s.points.map(([px]) => px));
  const ys = series.flatMap((s) => s.points.map(([, py]) => py)).filter(Number.isFinite);
  const xMax = axes.xMax ?? Math.max(1, ...xs);
  const yMax = axes.yMax ?? niceCeil(Math.max(...ys, ...marks.map((m) => m.value)) * 1.05);
  const x = (v: number) => left + (v / xMax) * pw;
  const y = (v: number) => top + ph - (Math.min(v, yMax) / yMax) * ph;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" ${FONT} font-size="12">`,
    `<title>${esc(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...head.lines,
  ];
  for (const v of linearTicks(yMax)) {
    const yy = f1(y(v));
    out.push(
      `<line x1="${left}" x2="${left + pw}" y1="${yy}" y2="${yy}" stroke="#e4e4e4"/>`,
      `<text x="${left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle" fill="#444">${+v.toFixed(6)}</text>`,
    );
  }
  for (const v of linearTicks(xMax)) {
    const xx = f1(x(v));
    out.push(
      `<line x1="${xx}" x2="${xx}" y1="${top}" y2="${top + ph}" stroke="#e4e4e4"/>`,
      `<text x="${xx}" y="${top + ph + 16}" text-anchor="middle" fill="#444">${+v.toFixed(6)}</text>`,
    );
  }
  out.push(
    `<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`,
    `<text x="${left + pw / 2}" y="${height - 12}" text-anchor="middle" fill="#333">${esc(axes.x)}</text>`,
    `<text transform="translate(16 ${top + ph / 2}) rotate(-90)" text-anchor="middle" fill="#333">${esc(axes.y)}</text>`,
  );
  for (const m of marks) {
    const yy = f1(y(m.value));
    out.push(
      `<line x1="${left}" x2="${left + pw}" y1="${yy}" y2="${yy}" stroke="#555" stroke-dasharray="4 3"/>`,
      `<text x="${left + pw - 4}" y="${f1(y(m.value) - 5)}" text-anchor="end" fill="#333">${esc(m.label)}</text>`,
    );
  }
  for (const s of series) {
    const d = s.points
      .filter(([, py]) => Number.isFinite(py))
      .map(([px, py], i) => `${i === 0 ? 'M' : 'L'}${f1(x(px))} ${f1(y(py))}`)
      .join(' ');
    out.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
    );
  }
  series.forEach((s, i) => {
    const ly = top + 8 + i * 19;
    const lx = left + pw + 16;
    out.push(
      `<line x1="${lx}" x2="${lx + 30}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2.2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
      `<text x="${lx + 38}" y="${ly}" dominant-baseline="middle">${esc(s.label)}</text>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}

/** The smallest of 1, 2, 2.5, 5 × 10^k that is ≥ v. */
function niceCeil(v: number): number {
  if (!(v > 0)) return 1;
  const e = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * e >= v) return m * e;
  return 10 * e;
}

/** About five round ticks from 0 to max. */
function linearTicks(max: number): number[] {
  const raw = max / 5;
  const e = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * e).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let v = 0; v <= max * 1.0001; v += step) ticks.push(v);
  return ticks;
}
