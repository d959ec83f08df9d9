/** The layering of ARCHITECTURE.md: imports point downward only.
 *  cli -> protocol (and the pure conf/, qemu argv for offline commands); daemon -> qemu, network -> hostdev -> host -> conf. */
const forbid = (name, from, to, comment) => ({ name, severity: 'error', comment, from: { path: from }, to: { path: to } });
module.exports = {
  forbidden: [
    forbid('conf-is-pure', '^src/conf/', '^src/(lib|host|hostdev|network|qemu|daemon|protocol|cli)/', 'conf imports nothing of ours'),
    forbid('lib-is-a-leaf', '^src/lib/', '^src/(conf|host|hostdev|network|qemu|daemon|protocol|cli)/', 'lib: small I/O utilities (atomic files) below everything but conf'),
    forbid('host-below-hostdev', '^src/host/', '^src/(hostdev|network|qemu|daemon|protocol|cli)/', 'host only knows conf'),
    forbid('hostdev-below-network', '^src/hostdev/', '^src/(network|qemu|daemon|protocol|cli)/', 'hostdev only knows host and conf'),
    forbid('network-below-qemu', '^src/network/', '^src/(qemu|daemon|protocol|cli)/', 'network knows hostdev, host, conf'),
    forbid('qemu-no-sysfs', '^src/qemu/', '^src/(network|daemon|protocol|cli)/', 'qemu asks hostdev/host, never the daemon'),
    forbid('daemon-not-cli', '^src/daemon/', '^src/cli/', 'the daemon never imports the client'),
    forbid('protocol-is-small', '^src/protocol/', '^src/(host|hostdev|network|qemu|daemon|cli)/', 'wire types only'),
    forbid('cli-speaks-api', '^src/cli/', '^src/(daemon|hostdev|network)/', 'the CLI speaks the API, not daemon internals'),
    forbid('cli-no-kernel', '^src/cli/', '^src/host/(?!sim/)', 'the CLI only touches the simulated hardware it creates'),
    {
      name: 'cli-table-is-light',
      severity: 'error',
      comment: 'every passthru command loads the command table: it imports types and constants, and reaches a command implementation only through import() (docs/performance.md)',
      from: { path: '^src/cli/(main|args|help|spec|table|context|client|render)[.]ts$|^src/cli/commands/' },
      to: {
        path: '^src/cli/run/|^src/conf/(?!error[.]ts$)|^src/(host|qemu|lib)/|^node_modules/',
        dynamic: false,
      },
    },
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'shipped-code-no-dev-deps',
      severity: 'error',
      comment: 'npm install -g leaves devDependencies out: what src/ runs must be a dependency',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
  },
};
