import { describe, expect, it } from 'vitest';
import { getTemplate } from '../../data/templates.js';
import type { ChatMessage } from '../chat-template.js';
import { TEMPLATE_TOKENIZER_SETTINGS } from './chat-templates.js';
import { trainTokenizer } from './train.js';

const TURNS = [
  { role: 'system', text: 'Answer briefly.' },
  { role: 'user', text: '<image>\nWhat colour is the star?' },
  { role: 'assistant', text: 'red' },
  { role: 'user', text: 'How many shapes?' },
  { role: 'assistant', text: '3' },
] as const;

/** The same conversation as the API sends it: image parts instead of the marker. */
function messages(turns: readonly { role: string; text: string }[]): ChatMessage[] {
  return turns.map(({ role, text }) =>
    text.startsWith('<image>\n')
      ? { role, content: [{ type: 'image' }, { type: 'text', text: text.slice('<image>\n'.length) }] }
      : { role, content: text },
  );
}

describe('TEMPLATE_TOKENIZER_SETTINGS', () => {
  for (const [name, settings] of Object.entries(TEMPLATE_TOKENIZER_SETTINGS)) {
    for (const withSystem of [true, false]) {
      it(`${name}${withSystem ? '' : ' (no system turn)'}: the generation prompt before each answer is the training text before it`, () => {
        const template = getTemplate(name, { systemPrompt: '' });
        const { tokenizer } = trainTokenizer(['a'], {
          vocabSize: 200,
          specialTokens: { eos: settings.eosToken ?? '</s>' },
          additionalSpecialTokens: ['<image>', ...template.requiredTokens],
          chatTemplate: settings.chatTemplate,
        });
        const turns = withSystem ? TURNS : TURNS.slice(1);
        const ctx = { tokenizer, imageTokenText: '<image>' };
        const segments = template.render(
          name === 'plain' ? turns.filter((t) => t.role !== 'system').slice(0, 2) : turns,
          ctx,
        );
        const chat = messages(
          name === 'plain' ? turns.filter((t) => t.role !== 'system').slice(0, 2) : turns,
        );
        let trained = '';
        let answers = 0;
        chat.forEach((message, i) => {
          if (message.role !== 'assistant') return;
          // Segments alternate masked prompt / supervised answer.
          const prompt = segments
            .slice(0, 2 * answers + 1)
            .map((s) => s.text)
            .join('');
          expect(tokenizer.applyChatTemplate(chat.slice(0, i), { addGenerationPrompt: true })).toBe(prompt);
          trained = prompt + segments[2 * answers + 1].text;
          answers++;
        });
        // The full rendering holds the whole training text (ChatML adds the "\n" that would open the next turn).
        const full = tokenizer.applyChatTemplate(chat);
        expect([trained, `${trained}\n`]).toContain(full);
      });
    }
  }
});
