import { Command } from 'commander';

export function buildProgram(): Command {
  const program = new Command('vistune').description('Visual instruction tuning in TypeScript');
  return program;
}
