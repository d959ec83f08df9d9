import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PassthruError } from '../../../src/conf/error.ts';
import { formatNetworkXml } from '../../../src/conf/network/format.ts';
import { parseNetworkXml } from '../../../src/conf/network/parse.ts';
import { formatNetworkPortXml, parseNetworkPortXml } from '../../../src/conf/network/port.ts';
import { postParseNetwork } from '../../../src/conf/network/postparse.ts';
import { readNetworkXml } from '../../../src/conf/network/read.ts';
import { files, read, rngProblem } from './libvirt.ts';

const inputs = files('network/in', '.xml');

/** libvirt's networkxml2xmltest marks these: modern libvirt refuses them at validation
 *  (passthrough-pf carries an <ip>, which we refuse already in the grammar). */
const VALIDATE_ERROR = new Set(['passthrough-address-crash.xml', 'passthrough-pf.xml']);
/** Inputs libvirt formats with VIR_NETWORK_XML_INACTIVE. */
const INACTIVE = new Set(['hostdev-pf.xml', 'hostdev-pf-driver-model.xml']);

test("network in -> out equals libvirt's expected output", (t) => {
  let n = 0;
  for (const f of inputs.filter((i) => i !== 'passthrough-pf.xml')) {
    const def = postParseNetwork(parseNetworkXml(read('network/in', f), f));
    assert.equal(formatNetworkXml(def, { inactive: INACTIVE.has(f) }), read('network/out', f), f);
    n++;
  }
  t.diagnostic(
    `network in -> out: ${n}/${inputs.length} (passthrough-pf: <ip> out of scope, see docs/conf-differences.md)`,
  );
  assert.ok(n >= 7);
});

test('networks libvirt refuses at validation are refused, naming the element and line', (t) => {
  for (const f of VALIDATE_ERROR) {
    assert.throws(
      () => readNetworkXml(read('network/in', f), f),
      (e: unknown) => e instanceof PassthruError && e.code === 'XML_INVALID' && e.line !== undefined,
      f,
    );
  }
  for (const f of inputs.filter((i) => !VALIDATE_ERROR.has(i))) readNetworkXml(read('network/in', f), f);
  t.diagnostic(`network validate errors: ${VALIDATE_ERROR.size}/${VALIDATE_ERROR.size}`);
});

test("network-port round trip over libvirt's data", (t) => {
  const ports = files('networkport', '.xml');
  for (const f of ports) {
    const text = read('networkport', f);
    const out = formatNetworkPortXml(parseNetworkPortXml(text, f));
    assert.equal(out, text, f);
    assert.equal(rngProblem('networkport.rng', out), undefined, f);
  }
  t.diagnostic(`networkport round trip + RELAX NG: ${ports.length}/${ports.length}`);
  assert.ok(ports.length >= 6);
});

test("networks we write validate against libvirt's network.rng", (t) => {
  let n = 0;
  for (const f of inputs.filter((i) => i !== 'passthrough-pf.xml')) {
    const def = postParseNetwork(parseNetworkXml(read('network/in', f), f));
    for (const inactive of [true, false]) {
      assert.equal(rngProblem('network.rng', formatNetworkXml(def, { inactive })), undefined, f);
      n++;
    }
  }
  t.diagnostic(`RELAX NG valid (network.rng): ${n}/${n}`);
});
