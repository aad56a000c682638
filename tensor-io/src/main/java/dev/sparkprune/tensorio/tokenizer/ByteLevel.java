package dev.sparkprune.tensorio.tokenizer;

/** GPT-2's reversible map from bytes to printable unicode characters (byte-level vocabularies). */
final class ByteLevel {
  private static final char[] BYTE_TO_CHAR = new char[256];
  private static final int[] CHAR_TO_BYTE = new int[512];

  static {
    java.util.Arrays.fill(CHAR_TO_BYTE, -1);
    int extra = 0;
    for (int b = 0; b < 256; b++) {
      boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char c = printable ? (char) b : (char) (256 + extra++);
      BYTE_TO_CHAR[b] = c;
      CHAR_TO_BYTE[c] = b;
    }
  }

  private ByteLevel() {}

  static char symbol(int b) {
    return BYTE_TO_CHAR[b & 0xFF];
  }

  static String encode(byte[] bytes) {
    char[] chars = new char[bytes.length];
    for (int i = 0; i < bytes.length; i++) {
      chars[i] = BYTE_TO_CHAR[bytes[i] & 0xFF];
    }
    return new String(chars);
  }

  /** The bytes a token stands for, or null when one of its characters is outside the map. */
  static byte[] decode(String token) {
    byte[] out = new byte[token.length()];
    for (int i = 0; i < token.length(); i++) {
      char c = token.charAt(i);
      int b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
      if (b < 0) {
        return null;
      }
      out[i] = (byte) b;
    }
    return out;
  }
}
