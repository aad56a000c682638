package dev.sparkprune.tensorio.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.Set;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsAction;
import org.apache.hadoop.fs.permission.FsPermission;

/**
 * Hadoop's local file system (checksummed, as {@code file://} is by default) with permissions
 * set and read through java.nio's POSIX attributes. Without Hadoop's native library,
 * {@link RawLocalFileSystem} starts a {@code chmod} process for every file and folder it
 * creates and an {@code ls -ld} for every status whose permission is asked for: 12-24 ms each
 * from a JVM with a few GB of heap, more than a scoring task spends on a small linear. Same
 * files, same bits; the sticky bit (which java.nio cannot set) and file systems without POSIX
 * attributes go through Hadoop's own code.
 *
 * <p>{@code bin/sparkprune} selects it with {@code fs.file.impl} in {@code conf/hadoop/core-site.xml}.
 */
public class PosixLocalFileSystem extends LocalFileSystem {
  public PosixLocalFileSystem() {
    super(new Raw());
  }

  /** The raw (checksum-free) side. */
  public static class Raw extends RawLocalFileSystem {
    @Override
    public void setPermission(Path path, FsPermission permission) throws IOException {
      if (permission.getStickyBit()) {
        super.setPermission(path, permission);
        return;
      }
      try {
        Files.setPosixFilePermissions(pathToFile(path).toPath(), posix(permission));
      } catch (UnsupportedOperationException e) {
        super.setPermission(path, permission);
      }
    }

    @Override
    public FileStatus getFileStatus(Path path) throws IOException {
      return withPermission(super.getFileStatus(path));
    }

    @Override
    public FileStatus[] listStatus(Path path) throws IOException {
      FileStatus[] statuses = super.listStatus(path);
      for (int i = 0; i < statuses.length; i++) {
        statuses[i] = withPermission(statuses[i]);
      }
      return statuses;
    }

    /** The status with its permission, owner and group read now (follows links, as getFileStatus does). */
    private FileStatus withPermission(FileStatus status) throws IOException {
      PosixFileAttributes attributes;
      try {
        attributes = Files.readAttributes(pathToFile(status.getPath()).toPath(), PosixFileAttributes.class);
      } catch (UnsupportedOperationException | java.nio.file.NoSuchFileException e) {
        // No POSIX attributes, or a dangling link: as Hadoop's own status, loaded when asked.
        return status;
      }
      return new FileStatus(status.getLen(), status.isDirectory(), status.getReplication(), status.getBlockSize(),
          status.getModificationTime(), status.getAccessTime(), hadoop(attributes.permissions()), attributes.owner().getName(),
          attributes.group().getName(), status.getPath());
    }
  }

  static Set<PosixFilePermission> posix(FsPermission permission) {
    Set<PosixFilePermission> out = EnumSet.noneOf(PosixFilePermission.class);
    add(out, permission.getUserAction(), PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_EXECUTE);
    add(out, permission.getGroupAction(), PosixFilePermission.GROUP_READ, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_EXECUTE);
    add(out, permission.getOtherAction(), PosixFilePermission.OTHERS_READ, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_EXECUTE);
    return out;
  }

  static FsPermission hadoop(Set<PosixFilePermission> permissions) {
    return new FsPermission(
        action(permissions, PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_EXECUTE),
        action(permissions, PosixFilePermission.GROUP_READ, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_EXECUTE),
        action(permissions, PosixFilePermission.OTHERS_READ, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_EXECUTE));
  }

  private static void add(Set<PosixFilePermission> out, FsAction action, PosixFilePermission read, PosixFilePermission write,
      PosixFilePermission execute) {
    if (action.implies(FsAction.READ)) {
      out.add(read);
    }
    if (action.implies(FsAction.WRITE)) {
      out.add(write);
    }
    if (action.implies(FsAction.EXECUTE)) {
      out.add(execute);
    }
  }

  private static FsAction action(Set<PosixFilePermission> permissions, PosixFilePermission read, PosixFilePermission write,
      PosixFilePermission execute) {
    int bits = (permissions.contains(read) ? 4 : 0) | (permissions.contains(write) ? 2 : 0) | (permissions.contains(execute) ? 1 : 0);
    return FsAction.values()[bits];
  }
}
