import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readDomainXml } from '../../src/conf/domain/read.ts';
import { readTuning } from '../../src/conf/domain/tuning.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { libvirtArgs, libvirtCaseDef, ourArgs, valuesOf } from './helpers/libvirt-args.ts';

/** CPU model and topology, the RAM backend (hugepages, NUMA policy): libvirt's case where there
 *  is one, and the rules passthru adds. */
const machineOpt = (args: readonly string[]): string => valuesOf(args, '-machine')[0] ?? '';
const memObject = (args: readonly string[]): string | undefined =>
  valuesOf(args, '-object').find((o) => o.includes('"id":"pc.ram"'));

test('libvirt xml2argv memory: hugepages-default', () => {
  const theirs = libvirtArgs('hugepages-default');
  const ours = ourArgs(libvirtCaseDef('hugepages-default'), {
    memory: { source: { kind: 'file', memPath: '/dev/hugepages2M/libvirt/qemu/-1-QEMUGuest1' } },
  });
  assert.equal(memObject(ours), memObject(theirs));
  assert.match(machineOpt(theirs), /,memory-backend=pc\.ram/);
  assert.match(machineOpt(ours), /,memory-backend=pc\.ram$/);
});

const domain = (inner: string, vcpus = 4): string =>
  `<domain type='kvm'><name>t</name><memory unit='MiB'>64</memory><vcpu>${vcpus}</vcpu>${inner}<os><type>hvm</type></os><devices/></domain>`;

test('a memfd of hugepages with a NUMA policy; the topology and the CPU model by accelerator', () => {
  const def = readDomainXml(
    domain(
      "<cpu mode='host-passthrough'><topology sockets='2' dies='1' cores='2' threads='1'/></cpu><numatune><memory mode='preferred' nodeset='1'/></numatune>",
    ),
    't.xml',
  );
  const tcg = ourArgs(def, {
    memory: { source: { kind: 'memfd-hugetlb', pageBytes: 2097152 }, hostNodes: [1], policy: 'preferred' },
  });
  assert.equal(
    memObject(tcg),
    '{"qom-type":"memory-backend-memfd","id":"pc.ram","hugetlb":true,"hugetlbsize":2097152,"prealloc":true,"size":67108864,"host-nodes":[1],"policy":"preferred"}',
  );
  assert.equal(valuesOf(tcg, '-smp')[0], '4,sockets=2,dies=1,cores=2,threads=1');
  assert.equal(valuesOf(tcg, '-cpu')[0], 'max');
  assert.equal(valuesOf(ourArgs(def, { accel: 'kvm' }), '-cpu')[0], 'host,migratable=on');
  const custom = readDomainXml(domain("<cpu mode='custom'><model>Skylake-Server</model></cpu>", 1), 't.xml');
  assert.equal(valuesOf(ourArgs(custom, { accel: 'kvm' }), '-cpu')[0], 'Skylake-Server');
  // Without a backend plan: QEMU's own RAM, no -machine memory-backend.
  assert.equal(memObject(ourArgs(custom)), undefined);
  assert.doesNotMatch(machineOpt(ourArgs(custom)), /memory-backend/);
});

test('tuning the definition cannot have is refused, naming it', () => {
  const bad = (inner: string, re: RegExp, vcpus = 4): void => {
    assert.throws(
      () => readTuning(readDomainXml(domain(inner, vcpus), 't.xml')),
      (e: unknown) => e instanceof PassthruError && re.test(e.message),
    );
  };
  bad(
    "<cpu><topology sockets='1' dies='1' cores='2' threads='1'/></cpu>",
    /topology \(2 vCPUs\) does not match the 4 vCPUs/,
  );
  bad(
    "<cputune><vcpupin vcpu='4' cpuset='0'/></cputune>",
    /vcpupin vcpu='4'> names no vCPU of this domain \(it has 4\)/,
  );
  bad("<numatune><memory mode='strict' placement='auto'/></numatune>", /placement='auto'/);
  const t = readTuning(
    readDomainXml(
      domain(
        "<memoryBacking><hugepages><page size='1' unit='G'/></hugepages></memoryBacking><cputune><vcpupin vcpu='1' cpuset='0-1,^0'/><emulatorpin cpuset='0'/></cputune><numatune><memory placement='device'/></numatune>",
      ),
      't.xml',
    ),
  );
  assert.deepEqual(t.hugepages, { pageKiB: 1048576 });
  assert.deepEqual([...t.vcpupin], [[1, [1]]]);
  assert.deepEqual(t.emulatorpin, [0]);
  assert.deepEqual(t.memory, { placement: 'device', mode: 'strict' });
});
