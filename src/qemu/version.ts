import { execFile } from 'node:child_process';

const asked = new Map<string, Promise<{ version: string } | { error: string }>>();

/**
 * The QEMU binary's version ("7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)"), from `--version`, asked
 * once per binary for the daemon's life: the binary does not change under a running daemon
 * often enough to pay a process per `passthru version`.
 */
export function qemuVersion(binary: string): Promise<{ version: string } | { error: string }> {
  let answer = asked.get(binary);
  if (answer === undefined) {
    answer = new Promise((resolve) => {
      execFile(binary, ['--version'], { timeout: 10_000 }, (err, stdout) => {
        const m = /QEMU emulator version (.+)/.exec(stdout);
        if (m?.[1]) resolve({ version: m[1].trim() });
        else
          resolve({
            error: err ? `${binary} --version failed: ${err.message}` : `${binary} --version said no version`,
          });
      });
    });
    asked.set(binary, answer);
  }
  return answer;
}
