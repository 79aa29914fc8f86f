// Jinja chat templates (tokenizer_config.json `chat_template`) that render a conversation exactly as the
// built-in conversation templates (data/templates.ts) render it for training, so generate/chat/eval prompt a
// model with the text it was trained on. System prompts are not defaulted here: a model records the one it
// was trained with (config.json vistune_chat) and the API adds it as a system message.
import { IMAGE_MARKER } from '../../data/samples.js';

/** Renders message `m`'s content: a string as is; parts as each image's marker + "\n", then the texts. */
const CONTENT =
  "{% if m['content'] is string %}{{ m['content'] }}{% else %}" +
  `{% for part in m['content'] %}{% if part['type'] == 'image' %}{{ '${IMAGE_MARKER}\\n' }}{% endif %}{% endfor %}` +
  "{% for part in m['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}";

/** vicuna_v1 / llava_v1: `SYSTEM USER: q ASSISTANT: a</s>USER: …`; the generation prompt ends `ASSISTANT:`. */
const TWO_STYLE =
  "{% for m in messages %}{% if m['role'] == 'system' %}{% if m['content'] %}" +
  CONTENT +
  "{{ ' ' }}{% endif %}{% elif m['role'] == 'user' %}{{ 'USER: ' }}" +
  CONTENT +
  "{{ ' ' }}{% else %}{{ 'ASSISTANT: ' }}" +
  CONTENT +
  '{{ eos_token }}{% endif %}{% endfor %}' +
  "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";

/** ChatML: `<|im_start|>role\n…<|im_end|>\n`; the generation prompt opens the assistant turn. */
const CHATML =
  "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' }}" +
  CONTENT +
  "{{ '<|im_end|>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** Llama 3 headers (the tokenizer adds BOS). */
const LLAMA_3 =
  "{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' }}" +
  CONTENT +
  "{{ '<|eot_id|>' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

/** Llama 2: the system prompt goes in <<SYS>> inside the first [INST]; later turns open with the BOS text. */
const LLAMA_2 =
  "{% set ns = namespace(sys='', turn=0) %}{% for m in messages %}{% if m['role'] == 'system' %}" +
  "{% set ns.sys = m['content'] if m['content'] is string else m['content'][0]['text'] %}" +
  "{% elif m['role'] == 'user' %}{% if ns.turn > 0 %}{{ bos_token }}{% endif %}{{ '[INST] ' }}" +
  "{% if ns.turn == 0 and ns.sys %}{{ '<<SYS>>\\n' + ns.sys + '\\n<</SYS>>\\n\\n' }}{% endif %}" +
  CONTENT +
  "{{ ' [/INST]' }}{% set ns.turn = ns.turn + 1 %}{% else %}{{ ' ' }}" +
  CONTENT +
  "{{ ' ' + eos_token }}{% endif %}{% endfor %}";

/** LLaVA plain: each user turn is only its media markers; an answer is followed by "\n". */
const PLAIN =
  "{% for m in messages %}{% if m['role'] == 'user' %}{% if m['content'] is string %}" +
  `{% for i in range((m['content'].split('${IMAGE_MARKER}') | length) - 1) %}{{ '${IMAGE_MARKER}' }}{% endfor %}` +
  `{% else %}{% for part in m['content'] %}{% if part['type'] == 'image' %}{{ '${IMAGE_MARKER}' }}{% endif %}{% endfor %}{% endif %}` +
  "{% elif m['role'] == 'assistant' %}" +
  CONTENT +
  "{{ '\\n' }}{% endif %}{% endfor %}";

/** What a trained tokenizer needs for one built-in conversation template. */
export interface TemplateTokenizerSettings {
  /** Jinja source of tokenizer_config.json `chat_template`. */
  chatTemplate: string;
  /** The token that ends an answer (generation stops on it); default `</s>`. */
  eosToken?: string;
}

/** Built-in conversation templates that have a matching Jinja chat template (`hf` uses the tokenizer's own). */
export const TEMPLATE_TOKENIZER_SETTINGS: Readonly<Record<string, TemplateTokenizerSettings>> = {
  plain: { chatTemplate: PLAIN },
  vicuna_v1: { chatTemplate: TWO_STYLE },
  v1: { chatTemplate: TWO_STYLE },
  llava_v1: { chatTemplate: TWO_STYLE },
  chatml: { chatTemplate: CHATML, eosToken: '<|im_end|>' },
  llama_2: { chatTemplate: LLAMA_2 },
  llama_3: { chatTemplate: LLAMA_3, eosToken: '<|eot_id|>' },
};
