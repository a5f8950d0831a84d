/**
 * `input()` in the page's flow: a labelled field after the output, focused;
 * the answer is echoed into the output as a terminal would show it.
 */

import type { OutputArea } from './outputs';

let uid = 0;

export class InputPrompt {
  private form: HTMLFormElement | null = null;

  constructor(private readonly output: OutputArea) {}

  ask(prompt: string, password: boolean): Promise<string> {
    this.remove();
    const id = `cr-stdin-${++uid}`;
    return new Promise(resolve => {
      const form = (this.form = document.createElement('form'));
      form.className = 'cr-input';
      const label = Object.assign(document.createElement('label'), { htmlFor: id, textContent: prompt || 'Input' });
      const field = Object.assign(document.createElement('input'), {
        id,
        className: 'cr-stdin-field',
        type: password ? 'password' : 'text',
        autocomplete: 'off'
      });
      const submit = Object.assign(document.createElement('button'), { type: 'submit', textContent: 'Send' });
      form.append(label, field, submit);
      form.addEventListener('submit', event => {
        event.preventDefault();
        const value = field.value;
        this.remove();
        this.output.addNote(`${prompt}${password ? '••••' : value}`, 'cr-stdin-echo');
        resolve(value);
      });
      this.output.node.after(form);
      field.focus();
    });
  }

  /** The run ended (or was interrupted) while the kernel waited for input. */
  remove(): void {
    this.form?.remove();
    this.form = null;
  }
}
