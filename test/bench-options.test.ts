/** The bench's flags: defaults, --repeat, and wrong values as one-line usage errors. */
import { describe, expect, it } from 'vitest';
import { BenchUsageError, parseOptions } from '../bench/options.js';

describe('bench options', () => {
  it('defaults to one round of 200,000 messages; --quick to 50,000; --repeat sets the rounds', () => {
    expect(parseOptions([])).toMatchObject({ quick: false, messages: 200_000, repeat: 1 });
    expect(parseOptions(['--quick'])).toMatchObject({ quick: true, messages: 50_000, repeat: 1 });
    expect(parseOptions(['--repeat', '5', '--messages', '100_000'])).toMatchObject({ messages: 100_000, repeat: 5 });
    expect(parseOptions(['--help'])).toBeUndefined();
  });

  it.each([
    [['--repeat', '0'], /--repeat must be a positive integer, got 0/],
    [['--repeat', 'many'], /--repeat must be a positive integer/],
    [['--bogus'], /Unknown option '--bogus'/],
    [['--only', 'nope'], /--only takes capture, restore, scale, memory/],
    [['--filter', '('], /--filter is not a regular expression/],
  ])('refuses %j as a usage error', (argv, message) => {
    expect(() => parseOptions(argv)).toThrow(BenchUsageError);
    expect(() => parseOptions(argv)).toThrow(message);
  });
});
