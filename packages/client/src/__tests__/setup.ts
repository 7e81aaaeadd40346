// Every test runs on fake-indexeddb: install it before any module (Dexie) looks for IndexedDB.
import 'fake-indexeddb/auto'
