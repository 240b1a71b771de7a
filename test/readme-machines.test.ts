import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { machinesMarkdown, replaceMachinesSection } from '../machines/readme-diagrams.js';

it('README.md shows the current machine diagrams (run `npm run docs:machines` after changing a machine)', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const generated = machinesMarkdown();
  expect(generated).toContain('stateDiagram-v2');
  expect(replaceMachinesSection(readme, generated)).toBe(readme);
});
