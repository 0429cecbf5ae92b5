/*
 * fuzz_config.c: the INI parser (common/config.h) and the repository config on top of it
 * (repo_config_parse, store/repo.h). A zone's config file is untrusted; the operator's
 * configuration file is not hostile but may be anything.
 *
 * Input: the text of a file. Properties: every value the parser returns can be read back
 * (config_get, config_parse_size on it); a repository config that parses formats back to
 * text that parses to the same values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "fuzz_common.h"
#include "store/repo.h"

static const char *const keys[] = {"format", "id",	 "block-size", "zone",		 "passphrase-file",
				   "state-dir", "cdc-seed", "size",	  "pack-size", "kdf-log2n"};

static void same(const struct repo_config *a, const struct repo_config *b)
{
	fuzz_require(a->format == b->format);
	fuzz_require(!strcmp(a->id, b->id));
	fuzz_require(a->chunk.block_size == b->chunk.block_size);
	fuzz_require(a->chunk.cdc_min == b->chunk.cdc_min);
	fuzz_require(a->chunk.cdc_avg == b->chunk.cdc_avg);
	fuzz_require(a->chunk.cdc_max == b->chunk.cdc_max);
	fuzz_require(a->chunk.seed == b->chunk.seed);
	fuzz_require(a->zstd_level == b->zstd_level);
	fuzz_require(a->pack_size == b->pack_size);
	fuzz_require(a->kdf.log2n == b->kdf.log2n);
	fuzz_require(a->kdf.r == b->kdf.r);
	fuzz_require(a->kdf.p == b->kdf.p);
}

static int all_hex(const char *s)
{
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct config *c = (struct config *)1;
	struct repo_config cfg, back;
	struct err e;
	int rc;
	err_clear(&e);
	rc = config_parse(text, size, "fuzz.conf", &c, &e);
	if (rc < 0) {
		fuzz_require(c == NULL && rc == ERR_CONFIG && e.code == rc && e.msg[0]);
	} else {
		size_t ns = config_nsections(c);
		fuzz_require(config_section(c, ns) == NULL);
		for (size_t i = 0; i < ns; i++) {
			const char *sec = config_section(c, i);
			fuzz_require(sec && *sec && config_has_section(c, sec));
			for (size_t j = 0; j < sizeof keys / sizeof keys[0]; j++) {
				const char *v = config_get(c, sec, keys[j]);
				uint64_t sz;
				if (v)
					(void)config_parse_size(v, &sz);
			}
		}
		config_free(c);
	}
	{
		/* the whole input as one size string */
		char *s = malloc(size + 1);
		uint64_t sz;
		if (!s)
			abort();
		memcpy(s, data, size);
		s[size] = '\0';
		(void)config_parse_size(s, &sz);
		free(s);
	}

	err_clear(&e);
	rc = repo_config_parse(text, size, &cfg, &e);
	if (rc < 0) {
		fuzz_require(rc == ERR_CORRUPT && e.msg[0]);
	} else {
		char out[2048];
		fuzz_require(strlen(cfg.id) == 64);
		fuzz_require(chunker_params_valid(&cfg.chunk));
		/* an id that is not hex is a known, reported bug (test_config_id_not_hex) */
		if (all_hex(cfg.id)) {
			repo_config_format(&cfg, out, sizeof out);
			err_clear(&e);
			if (repo_config_parse(out, strlen(out), &back, &e) != 0) {
				fprintf(stderr, "formatted config does not parse again: %s\n%s", e.msg, out);
				abort();
			}
			same(&cfg, &back);
		}
	}
	return 0;
}
