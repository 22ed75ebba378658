/**
 * The executed notebooks of notebook runs, as a read-only JupyterLab drive: the default
 * output folder (`<jupyter data dir>/nbsched/runs`) is outside the server's root, where the
 * contents API cannot reach. `nbsched-runs:<run id>/<file name>.ipynb` opens a run's
 * notebook as a normal notebook, read-only (`GET nbsched/api/runs/{id}/notebook`).
 */
import { Contents, ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { IRun, IRunNotebook } from './protocol';

/** The drive's name: paths on it start with `nbsched-runs:`. */
export const RUNS_DRIVE = 'nbsched-runs';

/** What the drive asks of the REST client. */
export interface IRunNotebookSource {
  readonly settings: ServerConnection.ISettings;
  runNotebook(runId: string): Promise<IRunNotebook>;
}

/**
 * The path JupyterLab opens for a run's executed notebook: the file itself when it lies
 * under the server's root, else its place on the runs drive; null for runs without one.
 */
export function runNotebookPath(run: IRun): string | null {
  if (run.output_lab_path) {
    return run.output_lab_path;
  }
  const path = run.output_path;
  if (!path || !path.endsWith('.ipynb')) {
    return null;
  }
  const name = path.split(/[\\/]/).pop()!;
  return `${RUNS_DRIVE}:${encodeURIComponent(run.id)}/${name}`;
}

function readOnly(what: string): Promise<never> {
  return Promise.reject(
    new Error(
      `Executed notebooks of runs are read-only: cannot ${what}. ` +
        'Use "Save As…" to keep a copy in your files.'
    )
  );
}

export class RunsDrive implements Contents.IDrive {
  constructor(private readonly source: IRunNotebookSource) {}

  readonly name = RUNS_DRIVE;

  get serverSettings(): ServerConnection.ISettings {
    return this.source.settings;
  }

  get fileChanged(): ISignal<this, Contents.IChangedArgs> {
    return this._fileChanged;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (!this._isDisposed) {
      this._isDisposed = true;
      Signal.clearData(this);
    }
  }

  /** `<run id>/<name>.ipynb`: the run's notebook; anything shorter: an empty folder. */
  async get(
    localPath: string,
    options?: Contents.IFetchOptions
  ): Promise<Contents.IModel> {
    const parts = localPath.split('/').filter(part => part);
    if (parts.length < 2) {
      return {
        name: parts[0] ?? '',
        path: localPath,
        type: 'directory',
        format: 'json',
        content: [],
        writable: false,
        created: new Date(0).toISOString(),
        last_modified: new Date(0).toISOString(),
        mimetype: ''
      };
    }
    const notebook = await this.source.runNotebook(
      decodeURIComponent(parts[0])
    );
    return {
      name: notebook.name,
      path: localPath,
      type: 'notebook',
      format: 'json',
      content: options?.content === false ? null : notebook.content,
      writable: false,
      created: notebook.last_modified,
      last_modified: notebook.last_modified,
      mimetype: 'application/x-ipynb+json'
    };
  }

  getDownloadUrl(_localPath: string): Promise<string> {
    return readOnly('download from here');
  }

  newUntitled(_options?: Contents.ICreateOptions): Promise<Contents.IModel> {
    return readOnly('create files');
  }

  delete(_localPath: string): Promise<void> {
    return readOnly('delete');
  }

  rename(_oldPath: string, _newPath: string): Promise<Contents.IModel> {
    return readOnly('rename');
  }

  save(
    _localPath: string,
    _options?: Partial<Contents.IModel>
  ): Promise<Contents.IModel> {
    return readOnly('save');
  }

  copy(_localPath: string, _toDir: string): Promise<Contents.IModel> {
    return readOnly('copy from here');
  }

  createCheckpoint(_localPath: string): Promise<Contents.ICheckpointModel> {
    return readOnly('make checkpoints');
  }

  async listCheckpoints(
    _localPath: string
  ): Promise<Contents.ICheckpointModel[]> {
    return [];
  }

  restoreCheckpoint(_localPath: string, _id: string): Promise<void> {
    return readOnly('restore checkpoints');
  }

  deleteCheckpoint(_localPath: string, _id: string): Promise<void> {
    return readOnly('delete checkpoints');
  }

  private _isDisposed = false;
  private readonly _fileChanged = new Signal<this, Contents.IChangedArgs>(this);
}
