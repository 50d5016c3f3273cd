#pragma once
// The Job (schemas/job.fbs) of a program, and the ids of jobs and batches.
//
// Job ids: "{batch}-{line}-{digest}", digest = 8 hex digits of a hash of the program (id,
// language, source, stdin, timeout), so that a result found in the results stream under a
// resumed batch belongs to the very same program. The default batch is derived from the
// absolute paths of the input and the output file: the same command line resumes the same
// batch.
#include <string>

#include "client/sweep/options.hpp"
#include "client/sweep/program.hpp"
#include "schemas/codec.hpp"

namespace corral::sweep {

[[nodiscard]] std::string default_batch_id(const std::string& input, const std::string& out);
[[nodiscard]] std::string job_id(const std::string& batch, const program& p);
// The Job that runs p.
[[nodiscard]] wire::bytes build_job(const program& p, const std::string& batch,
                                    const std::string& job_id, const options& o);

}  // namespace corral::sweep
