#include "tests/kafka/checker.h"

#include "gtest/gtest.h"

namespace polder {
namespace checker {
namespace {

TEST(CheckerTest, ExactlyOnceInOrderIsClean) {
  Checker c;
  c.Acknowledged("a", "k1");
  c.Acknowledged("b", "k2");
  c.Acknowledged("c", "k1");
  c.Unacknowledged("d");
  c.Read(0, "a", "k1");
  c.Read(1, "b", "k2");
  c.Read(0, "c", "k1");
  c.Read(0, "d", "k1");
  const CheckerReport r = c.Report();
  EXPECT_TRUE(r.ok()) << r.Summary();
  EXPECT_EQ(r.acknowledged, 3);
  EXPECT_EQ(r.unacknowledged_present, 1);
}

TEST(CheckerTest, FindsLostDuplicatedReorderedAndPhantomRecords) {
  Checker c;
  for (const char* id : {"a", "b", "c", "d"}) c.Acknowledged(id, "k");
  c.Read(0, "b", "k");
  c.Read(0, "a", "k");  // a was acknowledged before b
  c.Read(0, "c", "k");
  c.Read(0, "c", "k");
  c.Read(0, "x", "k");  // never sent
  const CheckerReport r = c.Report();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.lost, 1) << r.Summary();  // d
  EXPECT_EQ(r.duplicated, 1) << r.Summary();
  EXPECT_EQ(r.reordered, 1) << r.Summary();
  EXPECT_EQ(r.phantom, 1) << r.Summary();
}

TEST(CheckerTest, OrderIsPerKeyAndPartition) {
  Checker c;
  c.Acknowledged("a", "k1");
  c.Acknowledged("b", "k2");
  c.Read(1, "b", "k2");  // other keys interleave freely
  c.Read(0, "a", "k1");
  EXPECT_TRUE(c.Report().ok()) << c.Report().Summary();
}

}  // namespace
}  // namespace checker
}  // namespace polder
