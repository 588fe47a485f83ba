/* libFuzzer target: control-socket request lines. The parser must never crash or leak,
 * and what it accepts must name a known command with an args object. */
#include <stdint.h>
#include <stdlib.h>

#include "ctl_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bw_ctl_request req;
	char err[256];

	if (bw_ctl_request_parse((const char *)data, size, &req, err, sizeof(err)) == 0) {
		if (req.cmd >= BW_CTL_N_CMDS || !json_is_object(req.args))
			abort();
		bw_ctl_request_clear(&req);
	}
	return 0;
}
