import { Rng, type ChatMessage } from '@skd/core';
import { referenceTokenizer, runReference, type ReferenceTokenizerStyle } from '@skd/testing';
import { HfTokenizer } from './hf-tokenizer';

// 20 conversations per template, rendered by skd (@huggingface/jinja) and by transformers'
// apply_chat_template: the same text, or both refuse (Gemma and Llama 2 templates raise on a
// system role or on roles out of order).
const CONTENTS = [
  'Hello!',
  '  What is 12 + 7?  ',
  'Translate "naïve café" into Greek.',
  'Line one\nLine two\n',
  '🙂 thanks',
  'x',
  '<b>bold</b> & "quotes"',
  'Tab\tseparated',
  '  ',
];

function conversations(): ChatMessage[][] {
  const rng = Rng.create(3);
  const pick = () => CONTENTS[Math.floor(rng.random() * CONTENTS.length)] as string;
  const out: ChatMessage[][] = [
    [{ role: 'user', content: 'Hi' }],
    [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Hi' },
    ],
    [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello' },
    ],
    [{ role: 'assistant', content: 'I speak first' }],
    [
      { role: 'user', content: 'a' },
      { role: 'user', content: 'b' },
    ],
  ];
  while (out.length < 20) {
    const turns = 1 + Math.floor(rng.random() * 4);
    const messages: ChatMessage[] = rng.random() < 0.3 ? [{ role: 'system', content: pick() }] : [];
    for (let t = 0; t < turns; t++) messages.push({ role: t % 2 === 0 ? 'user' : 'assistant', content: pick() });
    out.push(messages);
  }
  return out;
}

describe.each(['qwen2', 'llama3', 'gemma', 'llama2', 'tekken', 'gpt2'] as ReferenceTokenizerStyle[])(
  "chat templates (%s) against transformers' apply_chat_template",
  (style) => {
    const dir = referenceTokenizer(style);
    const tokenizer = HfTokenizer.fromFolder(dir);

    it.each([true, false])('renders 20 conversations identically (add_generation_prompt %s), refusals included', (addGenerationPrompt) => {
      const all = conversations();
      const expected = runReference<{ texts: (string | { error: string })[] }>(['chat', dir], {
        conversations: all,
        add_generation_prompt: addGenerationPrompt,
      }).texts;
      const ours = all.map((messages) => {
        try {
          return tokenizer.renderChat(messages, { addGenerationPrompt });
        } catch (error) {
          return { error: (error as Error).message };
        }
      });
      ours.forEach((text, i) => {
        const theirs = expected[i];
        if (typeof theirs === 'string') expect({ i, text }).toEqual({ i, text: theirs });
        else expect({ i, refused: typeof text !== 'string' }).toEqual({ i, refused: true });
      });
      expect(expected.filter((t) => typeof t === 'string').length).toBeGreaterThan(5);
    });
  },
);
