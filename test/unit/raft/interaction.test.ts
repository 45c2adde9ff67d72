/**
 * Goal: pin the exact message-level behaviour of the Raft core in readable transcripts.
 * Method: run each datadriven script in test/raft/testdata/*.txt with the interpreter in
 * test/raft/interaction.ts and compare the regenerated file with the committed one. A failure shows
 * the diff. `REWRITE=1 npx ava test/unit/raft/interaction.test.ts` rewrites the expected output —
 * only commit the result if you understand every changed line.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { runScript } from '../../raft/interaction.ts';

const DIR = join(import.meta.dirname, '..', '..', 'raft', 'testdata');
const REWRITE = process.env.REWRITE === '1';

for (const file of readdirSync(DIR).filter((f) => f.endsWith('.txt')).sort()) {
  test(`interaction ${file}`, (t) => {
    const path = join(DIR, file);
    const expected = readFileSync(path, 'utf8');
    const actual = runScript(expected);
    if (REWRITE) {
      if (actual !== expected) writeFileSync(path, actual);
      t.pass();
      return;
    }
    t.is(actual, expected);
  });
}
