import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import { rejectUnknown } from '../../src/conf/xml/read.ts';
import { parseXml } from '../../src/conf/xml/reader.ts';
import { childElements, out, outText } from '../../src/conf/xml/tree.ts';
import { formatXml } from '../../src/conf/xml/writer.ts';

test('reader keeps line:column of elements', () => {
  const root = parseXml("<domain type='kvm'>\n  <name>a</name>\n    <devices/>\n</domain>");
  const [name, devices] = childElements(root);
  assert.equal(root.attrs.get('type'), 'kvm');
  assert.deepEqual([name?.line, name?.column], [2, 3]);
  assert.deepEqual([devices?.line, devices?.column], [3, 5]);
});

test('malformed XML is XML_SYNTAX with a position', () => {
  for (const [doc, line] of [
    ['<a>\n<b></a>', 2],
    ["<a x='1' x='2'/>", 1],
    ['<a>\n\n<b>', 3],
    ['', 1],
  ] as const) {
    assert.throws(
      () => parseXml(doc),
      (e: unknown) => e instanceof PassthruError && e.code === 'XML_SYNTAX' && e.line === line,
      doc,
    );
  }
});

test('writer uses libvirt style', () => {
  const text = formatXml(
    out('domain', [['type', 'kvm']], [outText('name', "a&b'"), out('devices'), out('x', [['skip', undefined]])]),
  );
  assert.equal(text, "<domain type='kvm'>\n  <name>a&amp;b'</name>\n  <devices/>\n  <x/>\n</domain>\n");
});

test('unknown attributes and elements are refused with their name and line', () => {
  const root = parseXml("<hostdev mode='subsystem' bogus='1'>\n<source/>\n<wat/></hostdev>");
  assert.throws(
    () => rejectUnknown(root, ['mode'], ['source']),
    /<hostdev> at line 1: attribute 'bogus' is not supported/,
  );
  assert.throws(() => rejectUnknown(root, ['mode', 'bogus'], ['source']), /<wat> at line 3.*not supported/);
});
