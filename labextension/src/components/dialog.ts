/**
 * The "Schedule…" dialog's body: presets or any schedule nbsched understands, the next fire
 * times as you type (from the server's preview), time zone, name, parameters and timeout.
 */
import { Widget } from '@lumino/widgets';

import {
  defaultJobName,
  formatTime,
  needsSeconds,
  parseParameters,
  PRESETS,
  timeZones
} from '../format';
import { INewJob, ISchedulerAPI } from '../protocol';

/** Milliseconds of typing pause before the preview is asked for. */
const PREVIEW_DELAY = 250;

function field(label: string, input: HTMLElement): HTMLElement {
  const row = document.createElement('label');
  row.className = 'nbsched-field';
  const name = document.createElement('span');
  name.className = 'nbsched-field-label';
  name.textContent = label;
  row.append(name, input);
  return row;
}

/** What the user typed, to carry into the dialog shown again after an error. */
export interface IFormState {
  name: string;
  schedule: string;
  timezone: string;
  parameters: string;
  timeout: string;
}

export class ScheduleForm extends Widget {
  constructor(
    private readonly api: ISchedulerAPI,
    readonly notebook: string,
    initial?: IFormState
  ) {
    super();
    this.addClass('nbsched-schedule-form');
    const target = document.createElement('div');
    target.className = 'nbsched-form-notebook';
    target.textContent = notebook;

    this._name = document.createElement('input');
    this._name.className = 'jp-mod-styled nbsched-input-name';
    this._name.value = defaultJobName(notebook);

    this._preset = document.createElement('select');
    this._preset.className = 'jp-mod-styled nbsched-input-preset';
    for (const preset of [...PRESETS, { label: 'Custom…', schedule: '' }]) {
      const option = document.createElement('option');
      option.value = preset.schedule;
      option.textContent = preset.label;
      this._preset.append(option);
    }
    this._schedule = document.createElement('input');
    this._schedule.className = 'jp-mod-styled nbsched-input-schedule';
    this._schedule.placeholder =
      'e.g. every weekday at 9:30, */15 * * * *, every 2h';
    this._schedule.value = PRESETS[1].schedule;
    this._preset.value = PRESETS[1].schedule;

    this._zone = document.createElement('select');
    this._zone.className = 'jp-mod-styled nbsched-input-timezone';
    for (const zone of timeZones()) {
      const option = document.createElement('option');
      option.value = zone;
      option.textContent = zone;
      this._zone.append(option);
    }

    this._preview = document.createElement('div');
    this._preview.className = 'nbsched-preview';

    this._parameters = document.createElement('textarea');
    this._parameters.className = 'jp-mod-styled nbsched-input-parameters';
    this._parameters.rows = 2;
    this._parameters.placeholder = 'one per line: region = "emea"';

    this._timeout = document.createElement('input');
    this._timeout.className = 'jp-mod-styled nbsched-input-timeout';
    this._timeout.type = 'number';
    this._timeout.min = '1';
    this._timeout.placeholder = 'no limit';

    this._error = document.createElement('div');
    this._error.className = 'nbsched-form-error';

    if (initial) {
      this._name.value = initial.name;
      this._schedule.value = initial.schedule;
      const match = PRESETS.find(p => p.schedule === initial.schedule);
      this._preset.value = match ? match.schedule : '';
      this._zone.value = initial.timezone;
      this._parameters.value = initial.parameters;
      this._timeout.value = initial.timeout;
    }

    this.node.append(
      target,
      field('Name', this._name),
      field('Repeat', this._preset),
      field('Schedule', this._schedule),
      this._preview,
      field('Time zone', this._zone),
      field('Parameters', this._parameters),
      field('Timeout (s)', this._timeout),
      this._error
    );
    this._preset.onchange = () => {
      if (this._preset.value) {
        this._schedule.value = this._preset.value;
      }
      this._schedule.focus();
      this.schedulePreview();
    };
    this._schedule.oninput = () => {
      const match = PRESETS.find(
        p => p.schedule === this._schedule.value.trim()
      );
      this._preset.value = match ? match.schedule : '';
      this.schedulePreview();
    };
    this._zone.onchange = () => this.schedulePreview();
    this.schedulePreview(0);
  }

  /** The job to create. @throws Error when a field is not valid (shown in the dialog) */
  getValue(): INewJob {
    const job: INewJob = {
      notebook: this.notebook,
      schedule: this._schedule.value.trim(),
      timezone: this._zone.value
    };
    const name = this._name.value.trim();
    if (name) {
      job.name = name;
    }
    const parameters = parseParameters(this._parameters.value);
    if (Object.keys(parameters).length) {
      job.parameters = parameters;
    }
    const timeout = this._timeout.value.trim();
    if (timeout) {
      job.timeout = Number(timeout);
    }
    return job;
  }

  /** The fields as typed. */
  state(): IFormState {
    return {
      name: this._name.value,
      schedule: this._schedule.value,
      timezone: this._zone.value,
      parameters: this._parameters.value,
      timeout: this._timeout.value
    };
  }

  /** Show an error under the form. */
  showError(message: string): void {
    this._error.textContent = message;
  }

  /** Ask for the preview after a pause in typing. Resolves when it is shown. */
  schedulePreview(delay = PREVIEW_DELAY): Promise<void> {
    if (this._timer !== null) {
      clearTimeout(this._timer);
    }
    return new Promise(resolve => {
      this._timer = setTimeout(() => {
        this._timer = null;
        void this.updatePreview().then(resolve);
      }, delay);
    });
  }

  private async updatePreview(): Promise<void> {
    const schedule = this._schedule.value.trim();
    const asked = ++this._asked;
    if (!schedule) {
      this._preview.replaceChildren();
      return;
    }
    try {
      const preview = await this.api.preview(schedule, this._zone.value);
      if (asked !== this._asked) {
        return; // an answer to an older text
      }
      const words = document.createElement('div');
      words.className = 'nbsched-preview-words';
      words.textContent = preview.description;
      const list = document.createElement('ol');
      list.className = 'nbsched-preview-times';
      const seconds = needsSeconds(preview.next);
      for (const time of preview.next) {
        const item = document.createElement('li');
        item.textContent = formatTime(time, seconds);
        item.title = time;
        list.append(item);
      }
      this._preview.className = 'nbsched-preview';
      this._preview.replaceChildren(words, list);
    } catch (error) {
      if (asked !== this._asked) {
        return;
      }
      this._preview.className = 'nbsched-preview nbsched-preview-bad';
      this._preview.textContent =
        error instanceof Error ? error.message : String(error);
    }
  }

  private readonly _name: HTMLInputElement;
  private readonly _preset: HTMLSelectElement;
  private readonly _schedule: HTMLInputElement;
  private readonly _zone: HTMLSelectElement;
  private readonly _preview: HTMLDivElement;
  private readonly _parameters: HTMLTextAreaElement;
  private readonly _timeout: HTMLInputElement;
  private readonly _error: HTMLDivElement;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _asked = 0;
}
