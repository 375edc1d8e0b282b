// The built-in prompt templates: v0 word for word as the paper prints it, v1-v6 present
// and well formed, and the compiled-in copies equal to the data files they come from.
#include <gtest/gtest.h>

#include <string>

#include "rl/templates.h"

namespace rpt {
namespace {

constexpr const char* kChatOpen = "<｜begin▁of▁sentence｜><｜User｜>";
constexpr const char* kChatAssistant = "<｜Assistant｜><think>\n";

// arXiv 2506.08007, Table 10, v0 ({prompt_content} is the context): the quote marks are
// the paper's typographic ones, and it breaks the line before "### Context".
constexpr const char* kPaperV0 =
    "Complete the given text under \u2018### Context\u2019 by predicting the next token, and wrap it in "
    "\u2018\\boxed{}\u2019. Please reason step by step to find the most probable next token as the final answer, "
    "and enclose it in \\boxed{} (note: the token may begin with a space, e.g., \\boxed{ para} or \\boxed{ =}; "
    "do not use \\text{}).\n\n### Context {prompt_content}";

std::string with_placeholder(const PromptTemplate& t) { return t.prompt_prefix + "{prompt_content}" + t.prompt_suffix; }

TEST(Templates, V0IsThePapersText) {
    const PromptTemplate v0 = load_template("v0");
    EXPECT_EQ(with_placeholder(v0), std::string(kChatOpen) + kPaperV0 + kChatAssistant);
    EXPECT_EQ(v0.answer_open, "\\boxed{");
    EXPECT_TRUE(v0.brace_matched);
    EXPECT_EQ(v0.think_close, "</think>");
    EXPECT_EQ(load_template("v0-r1-distill").to_json(), v0.to_json());  // the earlier name
}

TEST(Templates, AllSevenPaperTemplatesAreBuiltIn) {
    const std::vector<std::string> names = paper_template_names();
    ASSERT_EQ(names, (std::vector<std::string>{"v0", "v1", "v2", "v3", "v4", "v5", "v6"}));
    for (const std::string& name : names) {
        const PromptTemplate t = load_template(name);
        EXPECT_EQ(t.name, name);
        EXPECT_EQ(t.prompt_prefix.rfind(kChatOpen, 0), 0u) << name;
        EXPECT_GE(t.prompt_suffix.size(), std::string(kChatAssistant).size()) << name;
        EXPECT_EQ(t.prompt_suffix.substr(t.prompt_suffix.size() - std::string(kChatAssistant).size()), kChatAssistant)
            << name;
        EXPECT_NE(t.prompt_prefix.find("\\boxed{"), std::string::npos) << name;
        // The compiled-in copy is the data file.
        EXPECT_EQ(load_template("rl/templates/" + name + ".json").to_json(), t.to_json()) << name;
    }
    // v1-v5 fence the context in ``` (v6 too, after "The context is: ").
    for (const char* name : {"v1", "v2", "v3", "v4", "v5", "v6"}) {
        const PromptTemplate t = load_template(name);
        EXPECT_EQ(t.prompt_prefix.substr(t.prompt_prefix.size() - 3), "```") << name;
        EXPECT_EQ(t.prompt_suffix.substr(0, 3), "```") << name;
    }
}

}  // namespace
}  // namespace rpt
