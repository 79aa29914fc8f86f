import { createInterface } from 'node:readline/promises';
import { type ChatMessage, generateStream, initBackend } from '@vistune/core';
import type { Command } from 'commander';
import { builtinRegistry } from '../builtins.js';
import { backendOption } from '../program.js';
import {
  decoderOf,
  generateOptions,
  generationInputs,
  loadModelDir,
  preparePrompt,
  type SamplingFlags,
  userMessage,
} from '../runtime.js';
import { color } from '../ui.js';
import { addSamplingOptions } from './generate.js';

const HELP = `commands: /image PATH (attach an image to your next message), /reset (forget the conversation), /exit`;

export function registerChatCommand(program: Command): void {
  addSamplingOptions(
    program
      .command('chat')
      .description('Multi-turn conversation with a model; attach images with /image PATH before a message')
      .requiredOption('--model <dir>', 'Hugging Face-format model folder (LLaVA or LLaMA-family)')
      .option('--image <path>', 'an image for the first message'),
  )
    .addHelpText(
      'after',
      `\nExample:\n  $ vistune chat --model ./runs/demo/model --image scene.png\n\nIn the chat, ${HELP}`,
    )
    .action(async (flags: SamplingFlags & { model: string; image?: string }, cmd: Command) => {
      await initBackend({ backend: backendOption(cmd), quiet: true });
      const loaded = await loadModelDir(flags.model, await builtinRegistry());
      const opts = generateOptions(flags, loaded.tokenizer);
      const rl = createInterface({
        input: process.stdin,
        output: process.stdout,
        terminal: Boolean(process.stdin.isTTY),
      });
      let history: ChatMessage[] = [];
      let historyImages: string[] = [];
      let pending: string[] = flags.image ? [flags.image] : [];
      process.stdout.write(color.dim(`${HELP}\n`));
      try {
        // Iterating buffers piped lines that arrive while a reply is generated (question() would drop them).
        const ask = () => process.stdout.write(color.bold('you> '));
        ask();
        for await (const raw of rl) {
          const line = raw.trim();
          if (!line) {
            ask();
            continue;
          }
          if (line === '/exit' || line === '/quit') break;
          if (line === '/reset') {
            history = [];
            historyImages = [];
            pending = [];
            ask();
            continue;
          }
          if (line.startsWith('/image ')) {
            pending.push(line.slice(7).trim());
            process.stdout.write(color.dim(`attached ${pending.at(-1)}\n`));
            ask();
            continue;
          }
          const turn = userMessage(line, pending.length);
          const images = [...historyImages, ...pending];
          let prepared: Awaited<ReturnType<typeof preparePrompt>>;
          try {
            prepared = await preparePrompt(loaded, [...history, turn], images);
          } catch (err) {
            process.stdout.write(`${color.red('error')} ${(err as Error).message}\n`);
            pending = [];
            ask();
            continue;
          }
          const { input, dispose } = generationInputs(loaded, prepared);
          process.stdout.write(color.bold('assistant> '));
          let ids: number[] = [];
          try {
            const stream = generateStream(decoderOf(loaded), input, opts);
            for (;;) {
              const next = await stream.next();
              if (next.done) {
                ids = next.value.ids[0];
                break;
              }
              if (next.value.text) process.stdout.write(next.value.text);
            }
          } finally {
            dispose();
          }
          process.stdout.write('\n');
          const answer = loaded.tokenizer.decode(ids, { skipSpecialTokens: true }).trim();
          history = [...history, turn, { role: 'assistant', content: [{ type: 'text', text: answer }] }];
          historyImages = images;
          pending = [];
          ask();
        }
      } finally {
        rl.close();
        loaded.model.dispose();
      }
    });
}
