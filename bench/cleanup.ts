/** Everything the bench starts or creates, undone last-in first-out, once: on success, failure or Ctrl-C. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export class Cleanup {
  private readonly disposers: Array<() => unknown> = [];
  private running: Promise<void> | undefined;

  add(dispose: () => unknown): void {
    this.disposers.push(dispose);
  }

  /** A fresh temp dir, removed at cleanup unless removed earlier. */
  tempDir(prefix: string): string {
    const dir = mkdtempSync(path.join(tmpdir(), prefix));
    this.add(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (const dispose of this.disposers.reverse()) {
        try {
          await dispose();
        } catch (error) {
          console.error(`bench: cleanup step failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    })();
    return this.running;
  }
}
