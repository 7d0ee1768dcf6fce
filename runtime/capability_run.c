/* SPDX-License-Identifier: MIT */
/* Prompt → generate → post-process for one capability (runtime/capability_run.h). */
#include "runtime/capability_run.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

int aik_capability_prompt(const aik_capability_ops *cap, const char *input, size_t input_len, char *buf,
                          size_t cap_bytes, size_t *ret_len, aik_error *err)
{
    size_t len = 0;
    int r;

    if (!input || !buf || !ret_len || cap_bytes == 0)
        return aik_fail(err, -EINVAL, "prompt", "missing argument");
    if (!cap) {
        if (input_len >= cap_bytes)
            return aik_fail(err, -E2BIG, "input", "longer than %zu bytes", cap_bytes - 1);
        memcpy(buf, input, input_len);
        buf[input_len] = '\0';
        *ret_len = input_len;
        return 0;
    }
    r = cap->build_prompt(input, input_len, buf, cap_bytes, &len);
    if (r == -EINVAL)
        return aik_fail(err, -EINVAL, cap->capability, "the capability cannot serve this input");
    if (r < 0 || len >= cap_bytes)
        return aik_fail(err, -E2BIG, cap->capability, "prompt too long");
    buf[len] = '\0';
    *ret_len = len;
    return 0;
}

int aik_capability_run(aik_session *s, const aik_capability_ops *cap, const char *input, size_t input_len,
                       const aik_capability_run_options *opt, aik_generate_result *ret_result,
                       char **ret_completion, aik_error *err)
{
    aik_capability_run_options o = { 0 };
    aik_generate_params gp;
    aik_generate_result gen = { 0 };
    char prompt[AIK_CAPABILITY_PROMPT_MAX];
    char *raw = NULL;
    size_t plen = 0;
    int r;

    if (!s || !input || !ret_result)
        return aik_fail(err, -EINVAL, "capability run", "missing argument");
    if (opt)
        o = *opt;
    r = aik_capability_prompt(cap, input, input_len, prompt, sizeof(prompt), &plen, err);
    if (r < 0)
        return r;
    aik_generate_params_default(&gp);
    gp.n_predict = o.max_tokens ? o.max_tokens
                                : (cap && cap->max_tokens ? cap->max_tokens : AIK_CAPABILITY_DEFAULT_TOKENS);
    gp.sampling.temperature = o.temperature > 0 ? o.temperature : 0.0f;
    gp.sampling.seed = o.seed;
    gp.sampling.repeat_penalty = o.repeat_penalty > 0 ? o.repeat_penalty : AIK_CAPABILITY_REPEAT_PENALTY;
    gp.sampling.repeat_last_n = 64;
    gp.on_text = o.on_text;
    gp.user = o.user;
    gp.cancel = o.cancel;
    gp.prompt_policy = AIK_PROMPT_REFUSE;
    if (cap && cap->stop_strings) {
        size_t n = 0;
        while (n < 16 && cap->stop_strings[n])
            n++;
        gp.stop_strings = cap->stop_strings;
        gp.n_stop_strings = n;
    }
    r = aik_generate(s, prompt, plen, &gp, &gen, err);
    if (r < 0)
        return r;
    if (ret_completion) {
        raw = strdup(gen.text ? gen.text : "");
        if (!raw) {
            aik_generate_result_clear(&gen);
            return aik_fail(err, -ENOMEM, "capability run", "out of memory");
        }
    }
    if (cap && cap->postprocess && gen.text) {
        size_t len = gen.text_len;
        r = cap->postprocess(input, input_len, gen.text, gen.text_len, &len);
        if (r < 0 || len > gen.text_len) {
            free(raw);
            aik_generate_result_clear(&gen);
            return aik_fail(err, r < 0 ? r : -EPROTO, cap->capability, "post-processing failed");
        }
        gen.text_len = len;
        gen.text[len] = '\0';
    }
    *ret_result = gen;
    if (ret_completion)
        *ret_completion = raw;
    return 0;
}
