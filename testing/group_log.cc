#include "testing/group_log.h"

#include <algorithm>
#include <iterator>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace kafka_sidecar::testing {

std::set<int32_t> HeldPartitions(const std::string& log, const std::string& group,
                                 const std::string& topic) {
  const std::string assigned = absl::StrCat("[", group, "] assigned ");
  const std::string revoked = absl::StrCat("[", group, "] revoked ");
  const std::string lost = absl::StrCat("[", group, "] lost ");
  std::set<int32_t> held;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    size_t at;
    bool add;
    if ((at = line.find(assigned)) != absl::string_view::npos) {
      add = true;
      at += assigned.size();
    } else if ((at = line.find(revoked)) != absl::string_view::npos) {
      add = false;
      at += revoked.size();
    } else if ((at = line.find(lost)) != absl::string_view::npos) {
      add = false;
      at += lost.size();
    } else {
      continue;
    }
    for (absl::string_view item : absl::StrSplit(line.substr(at), ',', absl::SkipEmpty())) {
      int32_t partition;
      if (!absl::ConsumePrefix(&item, absl::StrCat(topic, "/")) ||
          !absl::SimpleAtoi(item, &partition)) {
        continue;
      }
      if (add) {
        held.insert(partition);
      } else {
        held.erase(partition);
      }
    }
  }
  return held;
}

std::string GroupLog(const std::string& log, size_t since, size_t max_lines) {
  constexpr absl::string_view kRoutine[] = {
      "] DUMP",  // assignment dumps, at every commit
      "] HEARTBEAT: [thrd:main]: GroupCoordinator/",  // a heartbeat sent (errors stay)
      "received op OFFSET_COMMIT", "Committing offsets for", "returned: Success",
      "] ASSIGNDONE: "};
  std::vector<absl::string_view> kept;
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(log).substr(std::min(since, log.size())), '\n')) {
    if (std::none_of(std::begin(kRoutine), std::end(kRoutine),
                     [line](absl::string_view r) { return absl::StrContains(line, r); })) {
      kept.push_back(line);
    }
  }
  const size_t from = kept.size() > max_lines ? kept.size() - max_lines : 0;
  return absl::StrCat(from > 0 ? absl::StrCat("(", from, " earlier lines left out)\n") : "",
                      absl::StrJoin(kept.begin() + from, kept.end(), "\n"));
}

}  // namespace kafka_sidecar::testing
