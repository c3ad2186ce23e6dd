// Our accepted flow syntax is also accepted by the real `ovs-ofctl parse-flow`, and we read
// each match as it does (its printed match equals ours, as a set of fields). Skipped when
// ovs-ofctl is not installed (package openvswitch-common).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { parseFlow } from './index.js';
import { OFCTL_CORPUS } from './ofctl-corpus.js';

const hasOfctl = spawnSync('ovs-ofctl', ['--version'], { encoding: 'utf8' }).status === 0;

/** Runs `ovs-ofctl parse-flow`, retrying with OpenFlow 1.3 for flows OpenFlow 1.0 cannot carry. */
function ofctl(flow: string): { ok: boolean; out: string } {
  let out = '';
  for (const args of [['parse-flow', flow], ['-O', 'OpenFlow13', 'parse-flow', flow]]) {
    const r = spawnSync('ovs-ofctl', args, { encoding: 'utf8' });
    out = `${r.stdout}${r.stderr}`;
    if (r.status === 0 && /\bADD\b/.test(out) && !/decode error/.test(out)) return { ok: true, out };
  }
  return { ok: false, out };
}

/** The match fields ovs-ofctl printed, without table/priority/cookie/timeouts. */
function ofctlMatch(out: string): string[] {
  const line = out.split('\n').find((l) => /\bADD\b/.test(l))!;
  const m = /\bADD (.*?)\s*actions=/.exec(line);
  const text = m ? m[1] : '';
  return text
    .split(/[\s,]+/)
    .filter((t) => t !== '' && !/^[a-z_]+:[^=]*$/.test(t) && !t.startsWith('priority='))
    .sort();
}

function ourMatch(flow: string): string[] {
  const t = parseFlow(flow).match.toString();
  return t === '' ? [] : t.split(',').sort();
}

// OpenFlow 1.0 cannot express a masked VLAN match on "no tag": ovs-ofctl then prints the
// OpenFlow 1.3 form; both denote the same packets.
const EQUIVALENT: Record<string, string> = { 'vlan_tci=0x0000': 'vlan_tci=0x0000/0x1fff' };
const canon = (xs: string[]) => xs.map((x) => EQUIVALENT[x] ?? x).sort();

describe('ovs-ofctl compatibility', () => {
  it('the corpus parses in our model', () => {
    for (const flow of OFCTL_CORPUS) assert.doesNotThrow(() => parseFlow(flow), flow);
  });

  it('real ovs-ofctl accepts every corpus flow and reads the same match', { skip: !hasOfctl && 'ovs-ofctl not installed' }, () => {
    const problems: string[] = [];
    for (const flow of OFCTL_CORPUS) {
      const r = ofctl(flow);
      if (!r.ok) {
        problems.push(`rejected by ovs-ofctl: ${flow}\n${r.out}`);
        continue;
      }
      const theirs = canon(ofctlMatch(r.out));
      let ours: string[];
      try {
        ours = canon(ourMatch(flow));
      } catch (e) {
        problems.push(`rejected by us: ${(e as Error).message}`);
        continue;
      }
      if (theirs.join() !== ours.join()) problems.push(`match differs for ${flow}\n  ovs-ofctl: ${theirs.join(',')}\n  ours:      ${ours.join(',')}`);
    }
    assert.deepEqual(problems, []);
  });
});
