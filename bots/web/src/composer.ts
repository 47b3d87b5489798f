/**
 * The text box: typed text is the Live API's third input beside the microphone and the camera.
 * What the user types goes to the bot as an RTVI `send-text` message (Enter or the Send button;
 * it is a form, so both submit it), which reaches Gemini as realtime text and, like speech,
 * interrupts the bot if it is speaking.
 */

export class Composer {
  private on = false;

  constructor(
    private readonly form: HTMLFormElement,
    private readonly input: HTMLInputElement,
    private readonly button: HTMLButtonElement,
    private readonly hint: HTMLElement,
    private readonly send: (text: string) => Promise<void>,
  ) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submit();
    });
    this.enabled = false;
  }

  /** The bot is ready to take text; otherwise the box says why it is off. */
  set enabled(on: boolean) {
    this.on = on;
    this.input.disabled = !on;
    this.button.disabled = !on;
    this.hint.hidden = on;
    this.form.dataset.enabled = String(on);
  }

  private async submit(): Promise<void> {
    const text = this.input.value.trim();
    if (!this.on || !text) return;
    this.input.value = "";
    try {
      await this.send(text);
    } finally {
      this.input.focus();
    }
  }
}
