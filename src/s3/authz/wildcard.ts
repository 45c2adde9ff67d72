/**
 * IAM wildcard matching ('*' any run of characters, also none; '?' exactly one) in time that no
 * pattern can blow up. The literal head (before the first '*') and tail (after the last) are
 * compared directly; what lies between compiles once into a bit-parallel automaton (Shift-And
 * with self-loops for '*') that reads the rest of the text once, ceil(k/32) word operations per
 * character (k: the middle's non-'*' characters), and never backtracks. A backtracking matcher
 * costs O(pattern × text) per resource on a hostile policy (review finding 5).
 */

/** A compiled pattern. */
interface Compiled {
  /** The pattern has no '*': head is all of it. */
  starless: boolean;
  head: string;
  tail: string;
  /** The part between the first and last '*' (without them); undefined when it is empty of characters. */
  middle: Automaton | undefined;
}

/** The middle's automaton: state i means "the first i non-'*' characters matched". */
interface Automaton {
  /** Number of 32-bit words per state set (states 0..k). */
  words: number;
  /** Index of the accepting state k. */
  accept: number;
  /** States with a '*' self-loop (a '*' stands right after their last matched character). */
  loops: Uint32Array;
  /** masks[row * words + w]: the states a character of that row advances; row 0 is any other character ('?' only). */
  masks: Uint32Array;
  /** The row of each character that appears in the middle. */
  rowOf: Map<number, number>;
}

function compile(pattern: string): Compiled {
  const first = pattern.indexOf('*');
  if (first < 0) return { starless: true, head: pattern, tail: '', middle: undefined };
  const last = pattern.lastIndexOf('*');
  const inner = pattern.slice(first + 1, last);
  return { starless: false, head: pattern.slice(0, first), tail: pattern.slice(last + 1), middle: inner.replaceAll('*', '') === '' ? undefined : automaton(inner) };
}

/** The automaton of `inner` as if it were "*inner*": it may start and end anywhere. */
function automaton(inner: string): Automaton {
  const tokens: number[] = [];
  const loopAt: number[] = [0];
  for (let i = 0; i < inner.length; i++) {
    const c = inner.charCodeAt(i);
    if (c === STAR) loopAt.push(tokens.length);
    else tokens.push(c);
  }
  loopAt.push(tokens.length);
  const words = Math.ceil((tokens.length + 1) / 32);
  const loops = new Uint32Array(words);
  for (const s of loopAt) loops[s >>> 5]! |= 1 << (s & 31);
  const rowOf = new Map<number, number>();
  for (const c of tokens) if (c !== QUESTION && !rowOf.has(c)) rowOf.set(c, rowOf.size + 1);
  const masks = new Uint32Array((rowOf.size + 1) * words);
  tokens.forEach((c, i) => {
    const bit = 1 << (i & 31);
    if (c === QUESTION) {
      for (let row = 0; row <= rowOf.size; row++) masks[row * words + (i >>> 5)]! |= bit;
    } else {
      masks[rowOf.get(c)! * words + (i >>> 5)]! |= bit;
    }
  });
  return { words, accept: tokens.length, loops, masks, rowOf };
}

const STAR = '*'.charCodeAt(0);
const QUESTION = '?'.charCodeAt(0);

/** Compiled patterns, so each policy resource compiles once, not once per request. */
const compiled = new Map<string, Compiled>();
const COMPILED_MAX = 4096;

function compiledOf(pattern: string): Compiled {
  let c = compiled.get(pattern);
  if (!c) {
    // A plain bound instead of an LRU: policies change rarely, and a full cache just restarts.
    if (compiled.size >= COMPILED_MAX) compiled.clear();
    c = compile(pattern);
    compiled.set(pattern, c);
  }
  return c;
}

/** True when `literal` (with '?' for any one character) matches text[at, at + literal.length). */
function literalAt(literal: string, text: string, at: number): boolean {
  for (let i = 0; i < literal.length; i++) {
    const c = literal.charCodeAt(i);
    if (c !== QUESTION && c !== text.charCodeAt(at + i)) return false;
  }
  return true;
}

/** True when `text` matches the IAM wildcard `pattern` (case-sensitive; '?' is one UTF-16 unit). */
export function wildcardMatch(pattern: string, text: string): boolean {
  const { starless, head, tail, middle } = compiledOf(pattern);
  if (starless) return head.length === text.length && literalAt(head, text, 0);
  if (head.length + tail.length > text.length) return false;
  if (!literalAt(head, text, 0) || !literalAt(tail, text, text.length - tail.length)) return false;
  return middle === undefined || runs(middle, text, head.length, text.length - tail.length);
}

/** True when the automaton reaches its accepting state on text[from, to). */
function runs(a: Automaton, text: string, from: number, to: number): boolean {
  const { words, accept, loops, masks, rowOf } = a;
  const acceptWord = accept >>> 5;
  const acceptBit = 1 << (accept & 31);
  let state = new Uint32Array(words);
  let next = new Uint32Array(words);
  state[0] = 1;
  for (let t = from; t < to; t++) {
    const base = (rowOf.get(text.charCodeAt(t)) ?? 0) * words;
    let carry = 0;
    for (let w = 0; w < words; w++) {
      const s = state[w]!;
      const advanced = s & masks[base + w]!;
      // Shift the advanced states up by one, carrying the top bit into the next word.
      next[w] = (advanced << 1) | carry | (s & loops[w]!);
      carry = advanced >>> 31;
    }
    [state, next] = [next, state];
    // The inner part is followed by '*': once accepted, it stays accepted.
    if ((state[acceptWord]! & acceptBit) !== 0) return true;
  }
  return (state[acceptWord]! & acceptBit) !== 0;
}
