// The aggregator configuration's `national:` section (ADR 0018 §4): the national views, the
// cities each expects and when a national window closes. Errors name the key and line
// (common/config).
//
//   national:
//     deadline: 15m            # after window end + grace; default for every view
//     revision_horizon: 168h   # how long a closed window waits for late cities
//     views:
//       - dataset: mobility.bike-counts
//         view: quarter-municipality
//         definition_hashes: [<64 hex digits>, ...]   # the cities' definitions it accepts
//         cities: [groningen, amersfoort, enschede]
//         grace: 5m            # the cities' grace (default 5m)
//         deadline: 20m        # optional, this view's own
#ifndef POLDER_SERVICES_AGGREGATOR_NATIONAL_CONFIG_H_
#define POLDER_SERVICES_AGGREGATOR_NATIONAL_CONFIG_H_

#include <vector>

#include "common/config/config.h"
#include "services/aggregator/national.h"

namespace polder {
namespace aggregator {

// Reads `national` (required) into `views`; errors go to the document (Finish reports them).
void ReadNationalSection(config::ObjectReader& root, std::vector<NationalViewSpec>* views);

}  // namespace aggregator
}  // namespace polder

#endif  // POLDER_SERVICES_AGGREGATOR_NATIONAL_CONFIG_H_
