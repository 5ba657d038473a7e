#include "common/wire/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace polder {
namespace wire {
namespace {

TEST(Utf8Test, AcceptsWellFormedText) {
  EXPECT_EQ(InvalidUtf8At(""), -1);
  EXPECT_EQ(InvalidUtf8At("Groningen"), -1);
  EXPECT_EQ(InvalidUtf8At("Ede–Wageningen \xE2\x82\xAC \xF0\x9F\x9A\xB2"),
            -1);                                     // en dash, euro, bicycle
  EXPECT_EQ(InvalidUtf8At("\xF4\x8F\xBF\xBF"), -1);  // U+10FFFF
  EXPECT_TRUE(
      IsUtf8("stra\xC3\x9F"
             "e"));
}

TEST(Utf8Test, NamesTheFirstBadByte) {
  EXPECT_EQ(InvalidUtf8At("ab\xFF"), 2);                    // never a lead byte
  EXPECT_EQ(InvalidUtf8At("a\x80"), 1);                     // a lone continuation byte
  EXPECT_EQ(InvalidUtf8At("ok\xC3"), 2);                    // truncated
  EXPECT_EQ(InvalidUtf8At("\xC3(x"), 0);                    // continuation missing
  EXPECT_EQ(InvalidUtf8At("x\xC0\xAF"), 1);                 // overlong '/'
  EXPECT_EQ(InvalidUtf8At("\xE0\x80\xAF"), 0);              // overlong, 3 bytes
  EXPECT_EQ(InvalidUtf8At("\xF0\x82\x82\xAC"), 0);          // overlong, 4 bytes
  EXPECT_EQ(InvalidUtf8At("\xED\xA0\x80"), 0);              // surrogate U+D800
  EXPECT_EQ(InvalidUtf8At("abc\xF4\x90\x80\x80"), 3);       // above U+10FFFF
  EXPECT_EQ(InvalidUtf8At(std::string("a\0b\xFF", 4)), 3);  // NUL is well-formed
  EXPECT_FALSE(IsUtf8("\xED\xBF\xBF"));
}

}  // namespace
}  // namespace wire
}  // namespace polder
