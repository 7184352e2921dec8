#include "core/multipart.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <random>
#include <string>
#include <vector>

namespace chatterd {
namespace {

using namespace std::string_literals;

constexpr std::string_view kCurlBoundary = "------------------------d74496d66958873e";
constexpr std::string_view kOkHttpBoundary = "3f5b6c2e-8d41-4c0a-9a57-1e2f3b4c5d6e";
constexpr std::string_view kAlamofireBoundary = "alamofire.boundary.8a3e5f2b1c9d4e70";
constexpr std::string_view kBoundary = "XyZ";

// Records events as text; consecutive data events are merged, since how bytes are split between
// on_part_data calls depends on how the body arrived.
class RecordingSink : public MultipartSink {
public:
    std::vector<std::string> events;
    int stop_at_event = -1;  // the event (0-based) whose callback returns false
    bool empty_data_seen = false;

    bool on_part_begin(const PartHeaders& part) override {
        std::string event = "begin name=" + std::string(part.name);
        if (part.has_filename) {
            event += " filename=" + std::string(part.filename);
        }
        if (!part.content_type.empty()) {
            event += " type=" + std::string(part.content_type);
        }
        return record(event);
    }
    bool on_part_data(std::string_view bytes) override {
        empty_data_seen = empty_data_seen || bytes.empty();
        if (!events.empty() && events.back().rfind("data:", 0) == 0 && stop_at_event < 0) {
            events.back().append(bytes);
            return true;
        }
        return record("data:" + std::string(bytes));
    }
    bool on_part_end() override { return record("end"); }

private:
    bool record(std::string event) {
        events.push_back(std::move(event));
        return static_cast<int>(events.size()) - 1 != stop_at_event;
    }
};

struct Outcome {
    std::vector<std::string> events;
    MultipartStatus fed = MultipartStatus::ok;       // what the last feed() returned
    MultipartStatus finished = MultipartStatus::ok;  // what finish() returned
    bool complete = false;

    bool operator==(const Outcome& other) const {
        return events == other.events && fed == other.fed && finished == other.finished
               && complete == other.complete;
    }
};

std::ostream& operator<<(std::ostream& out, const Outcome& outcome) {
    out << "fed=" << describe(outcome.fed) << " finished=" << describe(outcome.finished)
        << " complete=" << outcome.complete << " events:";
    for (const auto& event : outcome.events) {
        out << " [" << event << "]";
    }
    return out;
}

// Feeds body in pieces ending at the given cut offsets (ascending), then finishes.
Outcome parse_in_pieces(std::string_view body, const std::vector<std::size_t>& cuts,
                        std::string_view boundary = kBoundary,
                        std::size_t max_header_bytes = 16 * 1024) {
    RecordingSink sink;
    MultipartParser parser(boundary, sink, max_header_bytes);
    Outcome outcome;
    std::size_t start = 0;
    for (std::size_t cut : cuts) {
        outcome.fed = parser.feed(body.substr(start, cut - start));
        start = cut;
    }
    outcome.fed = parser.feed(body.substr(start));
    outcome.finished = parser.finish();
    outcome.complete = parser.complete();
    outcome.events = sink.events;
    EXPECT_FALSE(sink.empty_data_seen);
    return outcome;
}

Outcome parse(std::string_view body, std::string_view boundary = kBoundary) {
    return parse_in_pieces(body, {}, boundary);
}

// A well-formed form with boundary kBoundary, part by part.
std::string form(const std::vector<std::string>& parts) {
    std::string body;
    for (const auto& part : parts) {
        body += "--XyZ\r\n" + part + "\r\n";
    }
    return body + "--XyZ--\r\n";
}

std::string field(std::string_view name, std::string_view value) {
    return "Content-Disposition: form-data; name=\"" + std::string(name) + "\"\r\n\r\n"
           + std::string(value);
}

std::vector<std::string> field_events(std::string_view name, std::string_view value) {
    std::vector<std::string> events{"begin name=" + std::string(name)};
    if (!value.empty()) {
        events.push_back("data:" + std::string(value));
    }
    events.push_back("end");
    return events;
}

std::vector<std::string> concat(std::vector<std::vector<std::string>> groups) {
    std::vector<std::string> all;
    for (auto& group : groups) {
        all.insert(all.end(), group.begin(), group.end());
    }
    return all;
}

Outcome success(std::vector<std::string> events) {
    return {std::move(events), MultipartStatus::ok, MultipartStatus::ok, true};
}

MultipartStatus error_of(std::string_view body, std::size_t max_header_bytes = 16 * 1024) {
    const auto outcome = parse_in_pieces(body, {}, kBoundary, max_header_bytes);
    EXPECT_FALSE(outcome.complete && outcome.finished != MultipartStatus::ok);
    return outcome.finished;
}

const std::string kJpegBytes = "\xFF\xD8\xFF\xE0\0\x10JFIF\0\r\n--\r\n\xFF\xD9"s;

// ---------------------------------------------------------------- multipart_boundary

TEST(MultipartBoundary, AcceptsWhatClientsSend) {
    EXPECT_EQ(multipart_boundary(
                  "multipart/form-data; boundary=------------------------d74496d66958873e"),
              std::optional<std::string_view>(kCurlBoundary));
    EXPECT_EQ(
        multipart_boundary("multipart/form-data; boundary=3f5b6c2e-8d41-4c0a-9a57-1e2f3b4c5d6e"),
        std::optional<std::string_view>(kOkHttpBoundary));
    EXPECT_EQ(
        multipart_boundary("multipart/form-data; boundary=alamofire.boundary.8a3e5f2b1c9d4e70"),
        std::optional<std::string_view>(kAlamofireBoundary));
}

TEST(MultipartBoundary, CaseQuotesAndParameterOrder) {
    EXPECT_EQ(multipart_boundary("Multipart/Form-Data;BOUNDARY=abc"),
              std::optional<std::string_view>("abc"));
    EXPECT_EQ(multipart_boundary("  multipart/form-data ; charset=utf-8; boundary=\"a b:c\" "),
              std::optional<std::string_view>("a b:c"));
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=abc; charset=\"x;y\""),
              std::optional<std::string_view>("abc"));
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary = abc;"),
              std::optional<std::string_view>("abc"));
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=----=_Part_0_1.2"),
              std::optional<std::string_view>("----=_Part_0_1.2"));
}

TEST(MultipartBoundary, LengthLimits) {
    const std::string seventy(70, 'b');
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=" + seventy),
              std::optional<std::string_view>(seventy));
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=" + seventy + "b"), std::nullopt);
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=\"\""), std::nullopt);
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary="), std::nullopt);
}

TEST(MultipartBoundary, RefusesOtherTypesAndBadParameters) {
    EXPECT_EQ(multipart_boundary("application/x-www-form-urlencoded"), std::nullopt);
    EXPECT_EQ(multipart_boundary("multipart/mixed; boundary=abc"), std::nullopt);
    EXPECT_EQ(multipart_boundary("multipart/form-data-x; boundary=abc"), std::nullopt);
    EXPECT_EQ(multipart_boundary("multipart/form-data"), std::nullopt);
    EXPECT_EQ(multipart_boundary("multipart/form-data; charset=utf-8"), std::nullopt);
    EXPECT_EQ(multipart_boundary("multipart/form-data boundary=abc"), std::nullopt);
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=abc; boundary=def"), std::nullopt);
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=\"abc"), std::nullopt);
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=\"abc \""),
              std::nullopt);  // ends in a space
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=\"a\\\"b\""), std::nullopt);
    EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=a<b"), std::nullopt);
    EXPECT_EQ(multipart_boundary("multipart/form-data; =abc"), std::nullopt);
    EXPECT_EQ(multipart_boundary(""), std::nullopt);
}

// ---------------------------------------------------------------- forms real clients send

TEST(MultipartParser, CurlForm) {
    const std::string body = "--"s + std::string(kCurlBoundary) + "\r\n"
        "Content-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n"
        "--" + std::string(kCurlBoundary) + "\r\n"
        "Content-Disposition: form-data; name=\"message\"\r\n\r\nhello world\r\n"
        "--" + std::string(kCurlBoundary) + "\r\n"
        "Content-Disposition: form-data; name=\"image\"; filename=\"photo.jpg\"\r\n"
        "Content-Type: image/jpeg\r\n\r\n" + kJpegBytes + "\r\n"
        "--" + std::string(kCurlBoundary) + "--\r\n";
    EXPECT_EQ(
        parse(body, kCurlBoundary),
        success({"begin name=username", "data:alice", "end", "begin name=message",
                 "data:hello world", "end", "begin name=image filename=photo.jpg type=image/jpeg",
                 "data:" + kJpegBytes, "end"}));
}

TEST(MultipartParser, OkHttpFormWithPartContentLength) {
    const std::string dash = "--" + std::string(kOkHttpBoundary);
    const std::string body = dash + "\r\n"
        "Content-Disposition: form-data; name=\"username\"\r\nContent-Length: 5\r\n\r\nalice\r\n" + dash + "\r\n"
        "Content-Disposition: form-data; name=\"message\"\r\nContent-Length: 0\r\n\r\n\r\n" + dash + "\r\n"
        "Content-Disposition: form-data; name=\"image\"; filename=\"chattImage\"\r\n"
        "Content-Type: image/jpeg\r\nContent-Length: " + std::to_string(kJpegBytes.size()) + "\r\n\r\n" +
        kJpegBytes + "\r\n" + dash + "--\r\n";
    EXPECT_EQ(parse(body, kOkHttpBoundary),
              success({"begin name=username", "data:alice", "end", "begin name=message", "end",
                       "begin name=image filename=chattImage type=image/jpeg", "data:" + kJpegBytes,
                       "end"}));
}

TEST(MultipartParser, AlamofireFormWithVideo) {
    const std::string dash = "--" + std::string(kAlamofireBoundary);
    const std::string video =
        "\0\0\0\x18"
        "ftypmp42\0\0\0\0mp42isom"s;
    const std::string body = dash + "\r\n"
        "Content-Disposition: form-data; name=\"video\"; filename=\"chattVideo\"\r\nContent-Type: video/mp4\r\n\r\n" +
        video + "\r\n" + dash + "\r\n"
        "Content-Disposition: form-data; name=\"message\"\r\n\r\nhi\r\n" + dash + "\r\n"
        "Content-Disposition: form-data; name=\"username\"\r\n\r\nbob\r\n" + dash + "--\r\n";
    EXPECT_EQ(parse(body, kAlamofireBoundary),
              success({"begin name=video filename=chattVideo type=video/mp4", "data:" + video,
                       "end", "begin name=message", "data:hi", "end", "begin name=username",
                       "data:bob", "end"}));
}

TEST(MultipartParser, EmptyFieldsAndNoParts) {
    EXPECT_EQ(parse(form({field("username", ""), field("message", "")})),
              success(concat({field_events("username", ""), field_events("message", "")})));
    EXPECT_EQ(parse("--XyZ--\r\n"), success({}));
}

// ---------------------------------------------------------------- part content comes out
// byte-exact

TEST(MultipartParser, ContentThatLooksLikeADelimiter) {
    const std::vector<std::string> contents = {
        "--XyZ",  // right after the blank line: data, as for python-multipart (the reference's)
        "a--XyZ--b",
        "\r\n--Xy",  // a partial delimiter at the end
        "\r\n-",
        "\r",
        "\r\n",  // content ending with CRLF before the delimiter
        "line\r\n\r\n",
        "\r\n--XyZW"s.substr(0, 6)
            + "\r\n--X\r\n--XY\r\n--xyz",  // partial and case-different matches
        "\0\0\r\0\n\0"s,
        "\r\r\r\n\r\n-\r\n--\r\n--X\r\n--Xy",
    };
    for (const auto& content : contents) {
        EXPECT_EQ(parse(form({field("f", content)})), success(field_events("f", content)))
            << content;
    }
}

TEST(MultipartParser, MissingFinalCrlfPreambleAndEpilogue) {
    const std::string part = field("a", "1");
    EXPECT_EQ(parse("--XyZ\r\n" + part + "\r\n--XyZ--"), success(field_events("a", "1")));
    EXPECT_EQ(parse("preamble text\r\nwith --XyZ inside\r\n--XyZ\r\n" + part + "\r\n--XyZ--\r\n"),
              success(field_events("a", "1")));
    EXPECT_EQ(parse("\r\n--XyZ\r\n" + part + "\r\n--XyZ--\r\n"), success(field_events("a", "1")));
    EXPECT_EQ(parse(form({part}) + "epilogue\r\n--XyZ\r\ngarbage"),
              success(field_events("a", "1")));
    EXPECT_EQ(parse("--XyZ\r\n" + part + "\r\n--XyZ-- \r\n"), success(field_events("a", "1")));
}

TEST(MultipartParser, TransportPaddingAfterBoundary) {
    EXPECT_EQ(parse("--XyZ \t \r\n" + field("a", "1") + "\r\n--XyZ\t\r\n" + field("b", "2")
                    + "\r\n--XyZ--"),
              success(concat({field_events("a", "1"), field_events("b", "2")})));
}

TEST(MultipartParser, ManyTinyPartsInOneSpan) {
    std::string body;
    for (int index = 0; index < 20000; ++index) {
        body += "--XyZ\r\nContent-Disposition: form-data; name=p\r\n\r\n"
                + std::to_string(index % 10) + "\r\n";
    }
    body += "--XyZ--";
    const auto outcome = parse(body);
    EXPECT_EQ(outcome.finished, MultipartStatus::ok);
    ASSERT_EQ(outcome.events.size(), 3u * 20000);
    EXPECT_EQ(outcome.events[3 * 19999 + 1], "data:9");
}

// ---------------------------------------------------------------- part headers

TEST(MultipartParser, HeaderNamesAreCaseInsensitiveAndValuesTrimmed) {
    EXPECT_EQ(parse(form({"content-disposition:form-data;name=\"a\"\r\nCONTENT-TYPE: \t "
                          "text/plain; charset=utf-8 \t\r\n"
                          "X-Other: ignored\r\n\r\nx"})),
              success({"begin name=a type=text/plain; charset=utf-8", "data:x", "end"}));
}

TEST(MultipartParser, DispositionParameterForms) {
    const auto first_event = [](std::string disposition) {
        const auto outcome = parse(form({"Content-Disposition: " + disposition + "\r\n\r\n"}));
        EXPECT_EQ(outcome.finished, MultipartStatus::ok) << disposition;
        return outcome.events.empty() ? std::string() : outcome.events.front();
    };
    EXPECT_EQ(first_event("form-data; name=image; filename=a.jpg"),
              "begin name=image filename=a.jpg");
    EXPECT_EQ(first_event("Form-Data ;NAME = \"x\" ; FileName=\"\""), "begin name=x filename=");
    EXPECT_EQ(first_event(R"(form-data; name="a\"b\\c"; filename="say \"hi\".jpg")"),
              R"(begin name=a"b\c filename=say "hi".jpg)");
    EXPECT_EQ(first_event("form-data; name=\"a;b=c\"; size=12; filename=\"\xE3\x82\xB8.jpg\""),
              "begin name=a;b=c filename=\xE3\x82\xB8.jpg");
    EXPECT_EQ(
        first_event(
            "form-data; name=\"n\"; filename=\"plain.jpg\"; filename*=UTF-8''%E3%82%B8%20x.jpg"),
        "begin name=n filename=\xE3\x82\xB8 x.jpg");
    EXPECT_EQ(first_event("form-data; filename*=utf-8'en'a%2fb; name=n"),
              "begin name=n filename=a/b");
    EXPECT_EQ(first_event("form-data; name=\"n\";"), "begin name=n");
    EXPECT_EQ(first_event("form-data; name=\"\""), "begin name=");
}

TEST(MultipartParser, HeaderSizeLimit) {
    const std::string headers =
        "Content-Disposition: form-data; name=\"a\"\r\n\r\n";  // the limit counts these bytes
    const std::string body = form({headers + "x"});
    EXPECT_EQ(parse_in_pieces(body, {}, kBoundary, headers.size()).finished, MultipartStatus::ok);
    EXPECT_EQ(error_of(body, headers.size() - 1), MultipartStatus::header_too_large);
    EXPECT_EQ(error_of("--XyZ\r\n" + std::string(100000, 'h'), 16 * 1024),
              MultipartStatus::header_too_large);
}

// ---------------------------------------------------------------- malformations

TEST(MultipartParser, DelimiterMalformations) {
    EXPECT_EQ(error_of(""), MultipartStatus::missing_first_delimiter);
    EXPECT_EQ(error_of("no delimiter here\r\n--XyX\r\n"), MultipartStatus::missing_first_delimiter);
    EXPECT_EQ(error_of("--XyZx\r\n" + field("a", "1") + "\r\n--XyZ--"),
              MultipartStatus::garbage_after_boundary);
    EXPECT_EQ(error_of("--XyZ-x\r\n"), MultipartStatus::garbage_after_boundary);
    EXPECT_EQ(error_of("--XyZ \n"), MultipartStatus::garbage_after_boundary);
    EXPECT_EQ(error_of("--XyZ\n" + field("a", "1") + "\n--XyZ--\n"),
              MultipartStatus::garbage_after_boundary);
    EXPECT_EQ(error_of("--XyZ\r\r\n"), MultipartStatus::garbage_after_boundary);
    EXPECT_EQ(error_of("--XyZ\r\n" + field("a", "1") + "\r\n--XyZ\r\nContent"),
              MultipartStatus::truncated);
    EXPECT_EQ(error_of("--XyZ\r\n" + field("a", "1")), MultipartStatus::truncated);
    EXPECT_EQ(error_of("--XyZ\r\n" + field("a", "1") + "\r\n--Xy"), MultipartStatus::truncated);
    EXPECT_EQ(error_of("--XyZ\r\n" + field("a", "1") + "\r\n--XyZ"), MultipartStatus::truncated);
    EXPECT_EQ(error_of("--XyZ\r\n" + field("a", "1") + "\r\n--XyZ-"), MultipartStatus::truncated);
    EXPECT_EQ(error_of("--XyZ"), MultipartStatus::truncated);
}

TEST(MultipartParser, HeaderLineMalformations) {
    EXPECT_EQ(error_of(form({"Content-Disposition form-data; name=a\r\n\r\n"})),
              MultipartStatus::header_line_without_colon);
    EXPECT_EQ(error_of(form({"Content-Disposition: form-data;\r\n name=a\r\n\r\n"})),
              MultipartStatus::invalid_header_line);  // obs-fold
    EXPECT_EQ(error_of(form({": x\r\n" + field("a", "")})), MultipartStatus::invalid_header_line);
    EXPECT_EQ(error_of(form({"Bad Name: x\r\n" + field("a", "")})),
              MultipartStatus::invalid_header_line);
    EXPECT_EQ(error_of(form({"X: a\nb\r\n" + field("a", "")})),
              MultipartStatus::invalid_header_line);
    EXPECT_EQ(error_of(form({"X: a\rb\r\n" + field("a", "")})),
              MultipartStatus::invalid_header_line);
    EXPECT_EQ(error_of(form({"X: a\0b\r\n"s + field("a", "")})),
              MultipartStatus::invalid_header_line);
    EXPECT_EQ(error_of(form({"Content-Disposition: form-data; name=b\r\n" + field("a", "")})),
              MultipartStatus::duplicate_header);
    EXPECT_EQ(error_of(form({"Content-Type: a\r\ncontent-type: b\r\n" + field("a", "")})),
              MultipartStatus::duplicate_header);
}

TEST(MultipartParser, ContentDispositionMalformations) {
    const auto status_of = [](const std::string& headers) {
        return error_of(form({headers + "\r\n\r\nx"}));
    };
    EXPECT_EQ(error_of(form({"\r\nx"})), MultipartStatus::missing_content_disposition);
    EXPECT_EQ(status_of("Content-Type: text/plain"), MultipartStatus::missing_content_disposition);
    EXPECT_EQ(status_of("Content-Disposition: attachment; name=a"), MultipartStatus::not_form_data);
    EXPECT_EQ(status_of("Content-Disposition: form-datax; name=a"), MultipartStatus::not_form_data);
    EXPECT_EQ(status_of("Content-Disposition: form-data"), MultipartStatus::missing_name);
    EXPECT_EQ(status_of("Content-Disposition: form-data; filename=\"a.jpg\""),
              MultipartStatus::missing_name);
    const std::vector<std::string> invalid = {
        "",
        "; name=a",
        "form-data name=a",
        "form-data; name",
        "form-data; name=",
        "form-data; name=\"a",
        "form-data; name=\"a\\\"",
        "form-data; name=a b",
        "form-data; name=a\"b\"",
        "form-data; name=\"a\"b",
        "form-data; =a",
        "form-data; name=a; name=b",
        "form-data; name=a; filename=x; FILENAME=y",
        "form-data; name=a; filename*=UTF-8''%E3%8",
        "form-data; name=a; filename*=UTF-8''%zz",
        "form-data; name=a; filename*=ISO-8859-1''%E9",
        "form-data; name=a; filename*=UTF-8'x",
        "form-data; name=a; filename*=\"UTF-8''x\"",
    };
    for (const auto& disposition : invalid) {
        EXPECT_EQ(status_of("Content-Disposition: " + disposition),
                  MultipartStatus::invalid_content_disposition)
            << disposition;
    }
}

TEST(MultipartParser, InvalidBoundaryGivenToTheParser) {
    EXPECT_EQ(parse(form({field("a", "1")}), "").finished, MultipartStatus::invalid_boundary);
    EXPECT_EQ(parse(form({field("a", "1")}), std::string(71, 'b')).finished,
              MultipartStatus::invalid_boundary);
    EXPECT_EQ(parse(form({field("a", "1")}), "a\r\nb").finished, MultipartStatus::invalid_boundary);
    EXPECT_EQ(parse("--" + std::string(70, 'b') + "--", std::string(70, 'b')), success({}));
}

// ---------------------------------------------------------------- sink control and statuses

TEST(MultipartParser, SinkThatStops) {
    const std::string body = form({field("a", "1"), field("b", "2")});
    for (int stop_at = 0; stop_at < 6; ++stop_at) {
        RecordingSink sink;
        sink.stop_at_event = stop_at;
        MultipartParser parser(kBoundary, sink);
        EXPECT_EQ(parser.feed(body), MultipartStatus::stopped) << stop_at;
        EXPECT_EQ(static_cast<int>(sink.events.size()), stop_at + 1);
        EXPECT_EQ(parser.feed(body), MultipartStatus::stopped);
        EXPECT_EQ(parser.finish(), MultipartStatus::stopped);
        EXPECT_EQ(static_cast<int>(sink.events.size()), stop_at + 1);  // nothing after stopping
    }
}

TEST(MultipartParser, StatusesAreSticky) {
    RecordingSink sink;
    MultipartParser parser(kBoundary, sink);
    EXPECT_EQ(parser.feed("--XyZ\r\nno colon\r\n\r\n"), MultipartStatus::header_line_without_colon);
    EXPECT_EQ(parser.feed("--XyZ\r\n" + field("a", "1")),
              MultipartStatus::header_line_without_colon);
    EXPECT_EQ(parser.finish(), MultipartStatus::header_line_without_colon);
    EXPECT_FALSE(parser.complete());
    EXPECT_TRUE(sink.events.empty());

    MultipartParser truncated(kBoundary, sink);
    EXPECT_EQ(truncated.feed("--XyZ\r\n"), MultipartStatus::ok);
    EXPECT_EQ(truncated.finish(), MultipartStatus::truncated);
    EXPECT_EQ(truncated.feed(field("a", "1") + "\r\n--XyZ--"), MultipartStatus::truncated);
}

TEST(MultipartParser, CompleteAsSoonAsTheCloseDelimiterIsSeen) {
    RecordingSink sink;
    MultipartParser parser(kBoundary, sink);
    EXPECT_EQ(parser.feed("--XyZ\r\n" + field("a", "1") + "\r\n--XyZ-"), MultipartStatus::ok);
    EXPECT_FALSE(parser.complete());
    EXPECT_EQ(parser.feed("-"), MultipartStatus::ok);
    EXPECT_TRUE(parser.complete());
    EXPECT_EQ(parser.feed("\r\nanything"), MultipartStatus::ok);
    EXPECT_EQ(parser.finish(), MultipartStatus::ok);
}

TEST(MultipartDescribe, EveryStatusHasItsOwnText) {
    std::vector<std::string> texts;
    for (int status = 0; status <= static_cast<int>(MultipartStatus::truncated); ++status) {
        texts.emplace_back(describe(static_cast<MultipartStatus>(status)));
        EXPECT_NE(texts.back(), "unknown multipart status");
    }
    std::sort(texts.begin(), texts.end());
    EXPECT_EQ(std::unique(texts.begin(), texts.end()), texts.end());
}

// ---------------------------------------------------------------- any split gives the same events

std::vector<std::string> sample_bodies() {
    return {
        form({field("username", "alice"), field("message", ""),
              "Content-Disposition: form-data; name=\"image\"; "
              "filename=\"chattImage\"\r\nContent-Type: image/jpeg\r\n"
              "Content-Length: 17\r\n\r\n"
                  + kJpegBytes}),
        form({field("f", "\r\n--XyZ"s.substr(0, 6) + "\r\n--X--XyZ\r\n-\r\n--Xy\0\r\n"s)}),
        form({field("f", "\r\n")}) + "epilogue",
        "pre\r\n--Xy\r\n--XyZ \t\r\n" + field("a", "x\r\n--XyZx") + "\r\n--XyZ--",
        "--XyZ\r\n" + field("a", "12345\r\n--X"),
        "--XyZ\r\n" + field("a", "1") + "\r\n--XyZ!",
        "--XyZ\r\nContent-Disposition: form-data; name=a\r\nno colon\r\n\r\n",
        "--XyZ\r\nContent-Disposition: form-data; name=a; "
        "filename*=UTF-8''%41%42\r\n\r\nx\r\n--XyZ--",
        form(
            {"Content-Disposition: form-data; name=\"" + std::string(300, 'n') + "\"\r\n\r\ndata"}),
        "preamble only",
    };
}

TEST(MultipartParser, EverySplitInTwoGivesTheSameEvents) {
    for (const auto& body : sample_bodies()) {
        const auto whole = parse_in_pieces(body, {}, kBoundary, 256);
        for (std::size_t cut = 0; cut <= body.size(); ++cut) {
            ASSERT_EQ(parse_in_pieces(body, {cut}, kBoundary, 256), whole)
                << "cut at " << cut << " of " << body;
        }
    }
}

TEST(MultipartParser, RandomChunksGiveTheSameEvents) {
    std::mt19937 random(20250129);
    for (const auto& body : sample_bodies()) {
        const auto whole = parse_in_pieces(body, {}, kBoundary, 256);
        for (int round = 0; round < 200; ++round) {
            const std::size_t largest = 1 + random() % 12;
            std::vector<std::size_t> cuts;
            for (std::size_t at = random() % largest; at < body.size();
                 at += 1 + random() % largest) {
                cuts.push_back(at);
            }
            ASSERT_EQ(parse_in_pieces(body, cuts, kBoundary, 256), whole)
                << "round " << round << " of " << body;
        }
    }
}

TEST(MultipartParser, LargeRandomFileInRandomChunks) {
    std::mt19937 random(7);
    const std::string alphabet = "\r\n-XyZ\0ab"s;  // dense in delimiter fragments
    std::string content(2 * 1024 * 1024, '\0');
    for (auto& byte : content) {
        byte = alphabet[random() % alphabet.size()];
    }
    for (auto at = content.find("\r\n--XyZ"); at != std::string::npos;
         at = content.find("\r\n--XyZ", at)) {
        content[at + 6] = 'z';
    }
    const std::string body = form({field("video", content)});
    std::vector<std::size_t> cuts;
    for (std::size_t at = random() % 70000; at < body.size(); at += 1 + random() % 70000) {
        cuts.push_back(at);
    }
    EXPECT_EQ(parse_in_pieces(body, cuts), success(field_events("video", content)));
}

}  // namespace
}  // namespace chatterd
