import { createInterface } from 'node:readline/promises';
import type { MediaKind } from '@vistune/core';
import type { Command } from 'commander';
import { loadModel, type PreparedRequest, type VisionLanguageModel, type VlmMessage } from '../api/model.js';
import {
  addAllowNonfiniteOption,
  addLmHeadOption,
  addMediaOptions,
  addPluginOption,
  addSamplingOptions,
  backendOption,
  commandRegistry,
  mediaFromFlags,
  type SamplingFlags,
  samplingOptions,
} from '../options.js';
import { color } from '../ui.js';

const HELP =
  'commands: /attach PATH (attach a file to your next message; its kind comes from its extension), /image PATH, /reset (forget the conversation), /exit';

/** One turn of the conversation with the media items its parts stand for, by modality. */
export interface ChatTurn {
  message: VlmMessage;
  media: Record<string, string[]>;
}

/** The request of a conversation: the system prompt (if any), then every turn's message and media in order. */
export function conversationRequest(turns: readonly ChatTurn[], system?: string) {
  const media: Record<string, string[]> = {};
  for (const turn of turns)
    for (const [modality, items] of Object.entries(turn.media))
      media[modality] = [...(media[modality] ?? []), ...items];
  const messages = [
    ...(system === undefined ? [] : [{ role: 'system', content: system }]),
    ...turns.map((t) => t.message),
  ];
  return { messages, media };
}

/**
 * Prepares the conversation, dropping the oldest exchanges (user + assistant, with their media) while prompt +
 * answer would outgrow the context; the last turn (the new question and its media) is always kept.
 */
export async function fitConversation(
  vlm: VisionLanguageModel,
  turns: ChatTurn[],
  maxNewTokens: number,
  system?: string,
): Promise<{ prepared: PreparedRequest; dropped: number }> {
  let dropped = 0;
  for (;;) {
    const prepared = await vlm.prepare(conversationRequest(turns, system));
    if (prepared.inputIds.length + maxNewTokens <= vlm.contextLength || turns.length <= 1)
      return { prepared, dropped };
    for (const list of Object.values(prepared.media)) for (const t of list.flat()) t.dispose();
    const cut = Math.min(2, turns.length - 1);
    turns.splice(0, cut);
    dropped += cut;
  }
}

export function registerChatCommand(program: Command, kinds: readonly MediaKind[]): void {
  const cmd = program
    .command('chat')
    .description('Multi-turn conversation with a model; attach files with /attach PATH before a message')
    .requiredOption('--model <dir>', 'model folder (LLaVA-HF, a vistune composition, or a text-only LM)')
    .option(
      '--system-prompt <text>',
      "system prompt (default: the one the model was trained with; '' for none)",
    );
  addMediaOptions(cmd, kinds, 'for the first message');
  addPluginOption(cmd);
  addAllowNonfiniteOption(cmd);
  addLmHeadOption(cmd);
  addSamplingOptions(cmd)
    .addHelpText(
      'after',
      `\nExample:\n  $ vistune chat --model ./runs/demo/model --image scene.png\n\nIn the chat, ${HELP}`,
    )
    .action(
      async (
        flags: SamplingFlags & { model: string; systemPrompt?: string } & Record<string, unknown>,
        command: Command,
      ) => {
        const registry = await commandRegistry(command);
        const vlm = await loadModel(flags.model, {
          registry,
          backend: backendOption(command),
          allowNonfinite: Boolean(flags.allowNonfinite),
          lmHead: flags.lmHead as 'float32' | 'int8',
        });
        const opts = samplingOptions(flags);
        const rl = createInterface({
          input: process.stdin,
          output: process.stdout,
          terminal: Boolean(process.stdin.isTTY),
        });
        let turns: ChatTurn[] = [];
        let pending: Record<string, string[]> = {};
        const attach = (path: string, kind?: string) => {
          const modality = (kind ? vlm.modalityFor(kind) : vlm.modalityForFile(path)).name;
          pending[modality] = [...(pending[modality] ?? []), path];
          return modality;
        };
        try {
          const { byKind, untyped } = mediaFromFlags(flags, kinds);
          for (const [kind, paths] of Object.entries(byKind)) for (const p of paths) attach(p, kind);
          for (const p of untyped) attach(p);
        } catch (err) {
          vlm.dispose();
          rl.close();
          throw err;
        }
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
              turns = [];
              pending = {};
              ask();
              continue;
            }
            const command = /^\/(attach|image)\s+(.+)$/.exec(line);
            if (command) {
              try {
                const modality = attach(command[2].trim(), command[1] === 'image' ? 'image' : undefined);
                process.stdout.write(color.dim(`attached ${command[2].trim()} (${modality})\n`));
              } catch (err) {
                process.stdout.write(`${color.red('error')} ${(err as Error).message}\n`);
              }
              ask();
              continue;
            }
            const parts = Object.entries(pending).flatMap(([m, items]) => items.map(() => ({ type: m })));
            const turn: ChatTurn = {
              message: { role: 'user', content: [...parts, { type: 'text', text: line }] },
              media: pending,
            };
            pending = {};
            const candidate = [...turns, turn];
            let prepared: PreparedRequest;
            try {
              const fitted = await fitConversation(
                vlm,
                candidate,
                opts.maxNewTokens ?? 128,
                flags.systemPrompt,
              );
              prepared = fitted.prepared;
              if (fitted.dropped)
                process.stdout.write(
                  color.yellow(
                    `(the conversation outgrew the model's ${vlm.contextLength}-token context: the oldest ${fitted.dropped} turn(s) were dropped)\n`,
                  ),
                );
            } catch (err) {
              process.stdout.write(`${color.red('error')} ${(err as Error).message}\n`);
              ask();
              continue;
            }
            // The answer must fit beside the prompt: a long last message leaves fewer new tokens.
            const room = vlm.contextLength - prepared.inputIds.length;
            if (room < 1) {
              for (const list of Object.values(prepared.media)) for (const t of list.flat()) t.dispose();
              process.stdout.write(
                `${color.red('error')} your message is ${prepared.inputIds.length} tokens with its media; the model's context is ${vlm.contextLength}: shorten it\n`,
              );
              ask();
              continue;
            }
            const maxNewTokens = Math.min(opts.maxNewTokens ?? 128, room);
            if (maxNewTokens < (opts.maxNewTokens ?? 128))
              process.stdout.write(
                color.yellow(`(answer limited to ${maxNewTokens} tokens by the context)\n`),
              );
            process.stdout.write(color.bold('assistant> '));
            try {
              const stream = vlm.stream(prepared, { ...opts, maxNewTokens });
              let next = await stream.next();
              for (; !next.done; next = await stream.next())
                if (next.value.text) process.stdout.write(next.value.text);
              process.stdout.write('\n');
              for (const a of next.value.annotations)
                for (const l of a.lines) process.stdout.write(color.dim(`${l}\n`));
              turns = [
                ...candidate,
                {
                  message: { role: 'assistant', content: [{ type: 'text', text: next.value.text.trim() }] },
                  media: {},
                },
              ];
            } catch (err) {
              // The session survives a failed answer: the question is dropped, the history kept.
              process.stdout.write(`\n${color.red('error')} ${(err as Error).message}\n`);
            }
            ask();
          }
        } finally {
          rl.close();
          vlm.dispose();
        }
      },
    );
}
