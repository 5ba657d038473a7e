#include "common/views/view_key.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace polder {
namespace views {
namespace {

using ::polder::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

std::string TempDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t != nullptr ? t : "/tmp";
}

TEST(ViewKeyTest, CreatedKeyIsPrivateAndLoadsWithTheSameFingerprint) {
  const std::string path = absl::StrCat(TempDir(), "/created/views/bikes.key");
  ASSERT_OK_AND_ASSIGN(ViewKey made, ViewKey::Create(path));
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  ASSERT_OK_AND_ASSIGN(ViewKey loaded, ViewKey::Load(path));
  EXPECT_EQ(made.Fingerprint(), loaded.Fingerprint());
  EXPECT_EQ(made.RecordKey("d", "u"), loaded.RecordKey("d", "u"));
  EXPECT_THAT(ViewKey::Create(path).status(), StatusIs(absl::StatusCode::kAlreadyExists))
      << "a key is never replaced";
  ASSERT_OK_AND_ASSIGN(ViewKey other, ViewKey::Create(path + ".2"));
  EXPECT_NE(made.Fingerprint(), other.Fingerprint()) << "keys come from the RNG";
}

TEST(ViewKeyTest, BadKeyFilesAreRefusedNamingTheFileNeverTheBytes) {
  const std::string dir = absl::StrCat(TempDir(), "/bad");
  mkdir(dir.c_str(), 0700);
  EXPECT_THAT(ViewKey::Load(dir + "/missing.key").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("missing.key")));
  const std::string shared = dir + "/shared.key";
  std::ofstream(shared) << std::string(32, 'k');
  chmod(shared.c_str(), 0640);
  // Readable by a group the process is not in: refused. By its own group only: accepted (a
  // Kubernetes Secret under the pod's fsGroup); written or read by others, or writable by the
  // group: refused.
  // (Another group: the rule, trust::PrivateFileModeAllowed, is tested in keys_test.)
  EXPECT_OK(ViewKey::Load(shared).status());
  chmod(shared.c_str(), 0440);
  EXPECT_OK(ViewKey::Load(shared).status());
  for (mode_t bad : {0660, 0604, 0644, 0620}) {
    chmod(shared.c_str(), bad);
    EXPECT_THAT(ViewKey::Load(shared).status(),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         HasSubstr(absl::StrFormat("mode %04o", bad))));
  }
  const std::string shorter = dir + "/short.key";
  std::ofstream(shorter) << std::string(31, 'k');
  chmod(shorter.c_str(), 0600);
  auto s = ViewKey::Load(shorter).status();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("31 bytes")));
  EXPECT_THAT(s.message(), Not(HasSubstr("kkkk")));
  EXPECT_THAT(ViewKey::Load(dir).status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  const std::string link = dir + "/link.key";
  const std::string good = dir + "/good.key";
  std::ofstream(good) << std::string(32, 'g');
  chmod(good.c_str(), 0600);
  ASSERT_EQ(symlink(good.c_str(), link.c_str()), 0);
  EXPECT_THAT(ViewKey::Load(link).status(), StatusIs(absl::StatusCode::kFailedPrecondition))
      << "a symlink could point anywhere";
  EXPECT_OK(ViewKey::Load(good).status());
}

TEST(ViewKeyTest, RecordKeysSeparateDatasetsAndUnits) {
  const ViewKey key = ViewKey::FromBytesForTesting(std::string(32, '\x01'));
  std::set<uint64_t> seen;
  seen.insert(key.RecordKey("mobility.bike-counts", "a"));
  seen.insert(key.RecordKey("mobility.bike-counts", "b"));
  seen.insert(key.RecordKey("economy.footfall", "a"));
  // The separator keeps ("ab", "c") apart from ("a", "bc").
  seen.insert(key.RecordKey("ab", "c"));
  seen.insert(key.RecordKey("a", "bc"));
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(key.RecordKey("x", "y"), key.RecordKey("x", "y"));
  const ViewKey other = ViewKey::FromBytesForTesting(std::string(32, '\x02'));
  EXPECT_NE(key.RecordKey("x", "y"), other.RecordKey("x", "y"));
  EXPECT_EQ(key.Fingerprint().size(), 16u);
}

}  // namespace
}  // namespace views
}  // namespace polder
