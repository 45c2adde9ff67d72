/**
 * The node's fault mode, for the chaos suite only: when TS3GW_FAULTS_FILE names a file, the node
 * polls that small JSON file and injects what it says into its own clock and storage layer, so a
 * harness can skew one running process's clock or break its disk without root tricks that would
 * hit every node at once (faketime shifts a process only from its start; there is no dm-flakey).
 * Without the setting nothing here is built: production config never has a fault hook.
 *
 * A file rather than an endpoint: a paused, partitioned or overloaded node still picks it up,
 * it needs no authentication of its own (whoever can write the node's files owns the node
 * anyway), and `echo '{"clockOffsetMs":30000}' > faults.json` is a user's whole fault tool.
 *
 *   {
 *     "clockOffsetMs": 30000,     wall clock (object timestamps, SigV4 checks) shifted by this
 *     "clockRate": 1.02,          and running this fast from when the file said so (drift)
 *     "diskDelayMs": 200,         each durable write (WAL append, chunk fsync) waits this long
 *     "fsyncFail": "chunk"        durable writes of "chunk", "wal" or "all" fail with EIO
 *   }
 *
 * Missing fields mean no fault; an unreadable or invalid file keeps the last good state (and is
 * logged), a missing file means no faults at all.
 */
import { readFileSync } from 'node:fs';
import type { Clock } from '../util/clock.ts';
import type { DiskFaultHook } from '../util/disk-faults.ts';
import { StoreError } from '../util/errors.ts';

/** How often the control file is read. */
const POLL_INTERVAL_MS = 100;
/** Largest clock offset accepted (SigV4 tolerates 15 minutes; beyond that every request is refused anyway). */
const CLOCK_OFFSET_MS_MAX = 24 * 3600 * 1000;
/** Clock rates accepted: from a clock at a tenth of real speed to one ten times too fast. */
const CLOCK_RATE_MIN = 0.1;
const CLOCK_RATE_MAX = 10;
/** Longest injected disk delay. */
const DISK_DELAY_MS_MAX = 60_000;

/** What the control file asks for. */
export interface FaultState {
  clockOffsetMs: number;
  clockRate: number;
  diskDelayMs: number;
  fsyncFail: 'none' | 'chunk' | 'wal' | 'all';
}

/** No fault at all. */
export const NO_FAULTS: Readonly<FaultState> = Object.freeze({ clockOffsetMs: 0, clockRate: 1, diskDelayMs: 0, fsyncFail: 'none' });

/** Parses the control file's text; throws a TypeError naming the first bad field. */
export function parseFaultState(text: string): FaultState {
  const raw = text.trim() === '' ? {} : (JSON.parse(text) as unknown);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new TypeError('fault file must hold a JSON object');
  const o = raw as Record<string, unknown>;
  const known = new Set(Object.keys(NO_FAULTS));
  for (const k of Object.keys(o)) if (!known.has(k)) throw new TypeError(`fault file: unknown field "${k}"`);
  const num = (k: keyof FaultState, min: number, max: number, dflt: number): number => {
    const v = o[k] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new TypeError(`fault file: ${k} must be a number in ${min}..${max}`);
    return v;
  };
  const fsyncFail = o['fsyncFail'] ?? 'none';
  if (fsyncFail !== 'none' && fsyncFail !== 'chunk' && fsyncFail !== 'wal' && fsyncFail !== 'all') throw new TypeError('fault file: fsyncFail must be none, chunk, wal or all');
  return {
    clockOffsetMs: num('clockOffsetMs', -CLOCK_OFFSET_MS_MAX, CLOCK_OFFSET_MS_MAX, 0),
    clockRate: num('clockRate', CLOCK_RATE_MIN, CLOCK_RATE_MAX, 1),
    diskDelayMs: num('diskDelayMs', 0, DISK_DELAY_MS_MAX, 0),
    fsyncFail,
  };
}

/** Where FaultControl reports what it read. */
export interface FaultLogger {
  warn(obj: object, msg: string): void;
}

/** Time sources of FaultControl, injectable for tests. */
export interface FaultTime {
  /** Wall clock, ms since the epoch. */
  wallMs(): number;
  /** Monotonic clock, ms. */
  monotonicMs(): number;
}

const REAL_TIME: FaultTime = { wallMs: () => Date.now(), monotonicMs: () => performance.now() };

/**
 * Polls the control file and hands out the faulty clock and disk hook. The clock is
 *
 *   real wall clock + clockOffsetMs + (monotonic now - when clockRate was set) * (clockRate - 1)
 *
 * so drift accumulates from the moment the file set a rate and vanishes (a step back or forward)
 * when it is reset: both are what a bad NTP day looks like to the node.
 */
export class FaultControl {
  readonly #path: string;
  readonly #logger: FaultLogger;
  readonly #time: FaultTime;
  #state: FaultState = { ...NO_FAULTS };
  #driftSinceMs = 0;
  #lastText: string | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(path: string, logger: FaultLogger, time: FaultTime = REAL_TIME) {
    this.#path = path;
    this.#logger = logger;
    this.#time = time;
  }

  /** Reads the file now and then every POLL_INTERVAL_MS until stop(). */
  start(): void {
    this.poll();
    this.#timer = setInterval(() => this.poll(), POLL_INTERVAL_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The faults in force. */
  get state(): Readonly<FaultState> {
    return this.#state;
  }

  /** Reads the control file once (start() does it on a timer). */
  poll(): void {
    let text: string;
    try {
      text = readFileSync(this.#path, 'utf8');
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') {
        this.#logger.warn({ err, path: this.#path }, 'fault file unreadable; keeping the faults in force');
        return;
      }
      text = '';
    }
    if (text === this.#lastText) return;
    this.#lastText = text;
    let next: FaultState;
    try {
      next = parseFaultState(text);
    } catch (err) {
      this.#logger.warn({ err, path: this.#path }, 'fault file invalid; keeping the faults in force');
      return;
    }
    if (next.clockRate !== this.#state.clockRate) this.#driftSinceMs = this.#time.monotonicMs();
    this.#state = next;
    this.#logger.warn({ faults: next }, 'fault mode: faults changed');
  }

  /** The node's wall clock, with the offset and drift in force. */
  readonly clock: Clock = {
    nowMs: () => {
      const s = this.#state;
      const drift = s.clockRate === 1 ? 0 : (this.#time.monotonicMs() - this.#driftSinceMs) * (s.clockRate - 1);
      return Math.round(this.#time.wallMs() + s.clockOffsetMs + drift);
    },
  };

  /** The storage layer's hook: waits diskDelayMs, then fails with EIO when fsyncFail covers `what`. */
  readonly disk: DiskFaultHook = {
    beforeSync: async (what) => {
      const s = this.#state;
      if (s.diskDelayMs > 0) await new Promise((r) => setTimeout(r, s.diskDelayMs));
      const fail = this.#state.fsyncFail;
      if (fail === 'all' || fail === what) throw new StoreError('EIO', `injected fsync failure (${what})`);
    },
  };
}
