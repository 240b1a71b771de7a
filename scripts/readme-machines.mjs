// Rewrites the machine diagrams in README.md from the real machine definitions (run after `npm run build`):
//   npm run docs:machines
// test/readme-machines.test.ts fails when the README is out of date.
import { readFileSync, writeFileSync } from 'node:fs';
import { machinesMarkdown, replaceMachinesSection } from '../dist/machines/readme-diagrams.js';

const path = new URL('../README.md', import.meta.url);
const before = readFileSync(path, 'utf8');
const after = replaceMachinesSection(before, machinesMarkdown());
if (after !== before) writeFileSync(path, after);
console.log(after === before ? 'README machine diagrams are current' : 'README machine diagrams updated');
