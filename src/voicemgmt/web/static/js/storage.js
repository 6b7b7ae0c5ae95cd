// Web storage that never throws: a banner framed by a CRM on another site may be denied
// storage (third-party storage blocking); it then works without remembering anything.

class SafeStorage {
  constructor(kind) {
    this.kind = kind;
    this.memory = new Map();
  }

  _store() {
    try {
      return window[this.kind];
    } catch {
      return null;
    }
  }

  getItem(key) {
    try {
      const store = this._store();
      return store ? store.getItem(key) : this.memory.get(key) ?? null;
    } catch {
      return this.memory.get(key) ?? null;
    }
  }

  setItem(key, value) {
    this.memory.set(key, String(value));
    try {
      const store = this._store();
      if (store) store.setItem(key, String(value));
    } catch {
      /* kept in memory only */
    }
  }

  removeItem(key) {
    this.memory.delete(key);
    try {
      const store = this._store();
      if (store) store.removeItem(key);
    } catch {
      /* nothing to remove */
    }
  }
}

export const local = new SafeStorage("localStorage");
export const session = new SafeStorage("sessionStorage");
