// Test helper: a full disk on demand. FullDiskVfs registers an SQLite VFS
// that forwards everything to the default one, except that while Full() is
// set, every write or truncate of a file fails with SQLITE_FULL, as the
// unix VFS reports ENOSPC. Registered as the default VFS, it serves every
// connection opened afterwards in this process (the server's stores
// included), so tests reach the product's real disk-full paths on machines
// where a small filesystem cannot be mounted.
//
// Thread-safety: Full() may be flipped from any thread at any time; the
// VFS is registered for the life of the process (SQLite keeps a pointer).
#ifndef AUTOQ_SERVER_TEST_FAULT_VFS_H_
#define AUTOQ_SERVER_TEST_FAULT_VFS_H_

#include <sqlite3.h>

#include <atomic>
#include <cstring>
#include <mutex>

namespace autoq::server::test_util {

class FullDiskVfs {
 public:
  // Registers the VFS once (as the default one) and returns it.
  static FullDiskVfs& Install() {
    static FullDiskVfs* vfs = new FullDiskVfs();
    return *vfs;
  }

  void SetFull(bool full) { full_.store(full); }
  bool full() const { return full_.load(); }
  // Writes refused so far.
  long refused() const { return refused_.load(); }

 private:
  // Our file: the real one follows it in the same allocation.
  struct File {
    sqlite3_file base;
    sqlite3_file* real;
  };

  FullDiskVfs() {
    real_ = sqlite3_vfs_find(nullptr);
    std::memcpy(&vfs_, real_, sizeof(vfs_));
    vfs_.zName = "autoq_full_disk";
    vfs_.szOsFile = static_cast<int>(sizeof(File)) + real_->szOsFile;
    vfs_.pAppData = this;
    vfs_.xOpen = &Open;
    vfs_.pNext = nullptr;
    sqlite3_vfs_register(&vfs_, /*makeDflt=*/1);
  }

  static FullDiskVfs* Self(sqlite3_vfs* vfs) {
    return static_cast<FullDiskVfs*>(vfs->pAppData);
  }
  static sqlite3_file* Real(sqlite3_file* f) {
    return reinterpret_cast<File*>(f)->real;
  }

  static int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* f,
                  int flags, int* out_flags) {
    FullDiskVfs* self = Self(vfs);
    File* file = reinterpret_cast<File*>(f);
    file->real = reinterpret_cast<sqlite3_file*>(file + 1);
    int rc = self->real_->xOpen(self->real_, name, file->real, flags,
                                out_flags);
    if (rc != SQLITE_OK) {
      file->base.pMethods = nullptr;
      return rc;
    }
    if (file->real->pMethods == nullptr) {
      file->base.pMethods = nullptr;
      return rc;
    }
    self->InitMethods(file->real->pMethods);
    file->base.pMethods = &self->methods_;
    return rc;
  }

  // The methods of the real files with writes wrapped (the same for every
  // file of the default VFS).
  void InitMethods(const sqlite3_io_methods* real) {
    std::call_once(methods_once_, [&] { InitMethodsOnce(real); });
  }

  void InitMethodsOnce(const sqlite3_io_methods* real) {
    real_methods_ = real;
    std::memcpy(&methods_, real, sizeof(methods_));
    methods_.xClose = [](sqlite3_file* f) {
      sqlite3_file* r = Real(f);
      return r->pMethods->xClose(r);
    };
    methods_.xRead = [](sqlite3_file* f, void* buf, int n, sqlite3_int64 at) {
      sqlite3_file* r = Real(f);
      return r->pMethods->xRead(r, buf, n, at);
    };
    methods_.xWrite = [](sqlite3_file* f, const void* buf, int n,
                         sqlite3_int64 at) {
      if (Installed().Refuse()) return SQLITE_FULL;
      sqlite3_file* r = Real(f);
      return r->pMethods->xWrite(r, buf, n, at);
    };
    methods_.xTruncate = [](sqlite3_file* f, sqlite3_int64 size) {
      if (Installed().Refuse()) return SQLITE_FULL;
      sqlite3_file* r = Real(f);
      return r->pMethods->xTruncate(r, size);
    };
    methods_.xSync = [](sqlite3_file* f, int flags) {
      sqlite3_file* r = Real(f);
      return r->pMethods->xSync(r, flags);
    };
    methods_.xFileSize = [](sqlite3_file* f, sqlite3_int64* size) {
      sqlite3_file* r = Real(f);
      return r->pMethods->xFileSize(r, size);
    };
    methods_.xLock = [](sqlite3_file* f, int lock) {
      sqlite3_file* r = Real(f);
      return r->pMethods->xLock(r, lock);
    };
    methods_.xUnlock = [](sqlite3_file* f, int lock) {
      sqlite3_file* r = Real(f);
      return r->pMethods->xUnlock(r, lock);
    };
    methods_.xCheckReservedLock = [](sqlite3_file* f, int* out) {
      sqlite3_file* r = Real(f);
      return r->pMethods->xCheckReservedLock(r, out);
    };
    methods_.xFileControl = [](sqlite3_file* f, int op, void* arg) {
      sqlite3_file* r = Real(f);
      return r->pMethods->xFileControl(r, op, arg);
    };
    methods_.xSectorSize = [](sqlite3_file* f) {
      sqlite3_file* r = Real(f);
      return r->pMethods->xSectorSize(r);
    };
    methods_.xDeviceCharacteristics = [](sqlite3_file* f) {
      sqlite3_file* r = Real(f);
      return r->pMethods->xDeviceCharacteristics(r);
    };
    if (real->iVersion >= 2) {
      methods_.xShmMap = [](sqlite3_file* f, int page, int size, int extend,
                            void volatile** out) {
        sqlite3_file* r = Real(f);
        return r->pMethods->xShmMap(r, page, size, extend, out);
      };
      methods_.xShmLock = [](sqlite3_file* f, int offset, int n, int flags) {
        sqlite3_file* r = Real(f);
        return r->pMethods->xShmLock(r, offset, n, flags);
      };
      methods_.xShmBarrier = [](sqlite3_file* f) {
        sqlite3_file* r = Real(f);
        r->pMethods->xShmBarrier(r);
      };
      methods_.xShmUnmap = [](sqlite3_file* f, int remove) {
        sqlite3_file* r = Real(f);
        return r->pMethods->xShmUnmap(r, remove);
      };
    }
    if (real->iVersion >= 3) {
      // Memory-mapped reads are plain reads; writes never go through them.
      methods_.xFetch = [](sqlite3_file* f, sqlite3_int64 at, int n,
                           void** out) {
        sqlite3_file* r = Real(f);
        return r->pMethods->xFetch(r, at, n, out);
      };
      methods_.xUnfetch = [](sqlite3_file* f, sqlite3_int64 at, void* p) {
        sqlite3_file* r = Real(f);
        return r->pMethods->xUnfetch(r, at, p);
      };
    }
  }

  static FullDiskVfs& Installed() { return Install(); }

  bool Refuse() {
    if (!full_.load()) return false;
    refused_.fetch_add(1);
    return true;
  }

  sqlite3_vfs* real_ = nullptr;
  sqlite3_vfs vfs_{};
  sqlite3_io_methods methods_{};
  const sqlite3_io_methods* real_methods_ = nullptr;
  std::once_flag methods_once_;
  std::atomic<bool> full_{false};
  std::atomic<long> refused_{0};
};

}  // namespace autoq::server::test_util

#endif  // AUTOQ_SERVER_TEST_FAULT_VFS_H_
