// What tests of any part share.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

/**
 * A maker of fresh directories for a test file: each call gives a new one, all under one
 * directory removed when the file's tests end (a suite run leaves nothing in the temp dir).
 */
export function suiteDirs(prefix: string): () => string {
  const base = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(base, { recursive: true, force: true }));
  return () => mkdtempSync(join(base, 'd-'));
}
