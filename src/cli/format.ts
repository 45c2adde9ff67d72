/**
 * Terminal output of ts3ctl: aligned tables, human byte sizes, a progress bar with an ETA.
 */

/** Columns padded to their widest cell, two spaces apart. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

/** 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** 75 s → "1m15s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** "[#########-----------]  45%" over `width` characters of bar. */
export function progressBar(fraction: number, width = 30): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}] ${String(Math.floor(f * 100)).padStart(3)}%`;
}

/**
 * Estimates time left from (time, work done) samples: the rate over the last `windowMs`, so a
 * slow start or a pause does not distort it for long.
 */
export class EtaEstimator {
  readonly #samples: Array<{ atMs: number; done: number }> = [];
  readonly #windowMs: number;

  constructor(windowMs = 30_000) {
    this.#windowMs = windowMs;
  }

  /** Records progress; returns the seconds left, or Infinity while no rate is known. */
  update(atMs: number, done: number, total: number): number {
    this.#samples.push({ atMs, done });
    while (this.#samples.length > 2 && atMs - this.#samples[0]!.atMs > this.#windowMs) this.#samples.shift();
    const first = this.#samples[0]!;
    const rate = (done - first.done) / ((atMs - first.atMs) / 1000);
    if (!(rate > 0)) return done >= total ? 0 : Number.POSITIVE_INFINITY;
    return Math.max(0, total - done) / rate;
  }
}

/**
 * Shows a workflow's progress as `--wait` follows it: one line rewritten in place on a terminal,
 * each changed line on its own otherwise, or the record as JSON when it changed.
 */
export class ProgressPrinter {
  /** Rewriting one line in place (a terminal, not --json). */
  readonly tty: boolean;
  readonly #json: boolean;
  readonly #out: (s: string) => void;
  #lastLine = '';

  constructor(json: boolean, out: (s: string) => void) {
    this.tty = process.stdout.isTTY === true && !json;
    this.#json = json;
    this.#out = out;
  }

  show(line: string, record: unknown): void {
    if (this.#json) {
      if (line !== this.#lastLine) this.#out(JSON.stringify(record));
    } else if (this.tty) {
      process.stdout.write(`\r${line}\u001b[K`);
    } else if (line !== this.#lastLine) {
      this.#out(line);
    }
    this.#lastLine = line;
  }

  /** Ends the line rewritten in place, if any. */
  endLine(): void {
    if (this.tty) process.stdout.write('\n');
  }
}
