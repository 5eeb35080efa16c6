/*
 * check_fcgi_ocr.c - what fcgi/ocr.c does around Tesseract: the picture it
 * is given (grey, inverted when the ground is dark, enlarged by a whole
 * factor that keeps it within about 8 megapixels), the languages offered
 * (the .traineddata files of KVMGATE_TESSDATA, osd left out) and the
 * refusal that lists them, and the tidying and cutting of its text.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "fcgi.h"
#include "check_run.h"

/* A w x h picture of grey g with a 2x2 square of grey ink at x, y. */
static void make(struct img *im, int w, int h, unsigned char g, int x, int y,
                 unsigned char ink)
{
	im->w = w;
	im->h = h;
	im->px = xmalloc((size_t)w * h * 3);
	memset(im->px, g, (size_t)w * h * 3);
	for (int dy = 0; dy < 2; dy++)
		for (int dx = 0; dx < 2; dx++)
			memset(im->px + (((size_t)(y + dy) * w) + x + dx) * 3, ink, 3);
}

START_TEST(test_upscale_factor)
{
	static const struct { int w, h, k; } cases[] = {
		{ 1920, 1080, 2 }, { 640, 480, 3 }, { 800, 24, 3 }, { 3840, 2160, 1 },
		{ 1, 1, 3 }, { 965, 965, 3 }, { 966, 966, 2 },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		ck_assert_msg(ocr_upscale_factor(cases[i].w, cases[i].h) == cases[i].k,
		              "%dx%d: want %d", cases[i].w, cases[i].h, cases[i].k);
}
END_TEST

START_TEST(test_prepare_dark_ground_inverted)
{
	struct img im;
	struct ocr_grey g;

	/* Light text on a dark ground, as a console shows it. */
	make(&im, 10, 6, 16, 4, 2, 224);
	ocr_prepare(&im, &g);
	ck_assert_int_eq(g.scale, 3);
	ck_assert_int_eq(g.w, 30);
	ck_assert_int_eq(g.h, 18);
	ck_assert(g.inverted);
	/* The ground turned light, the ink dark, and their edges stay in between. */
	ck_assert_int_eq(g.px[0], 255 - 16);
	ck_assert_int_eq(g.px[(size_t)(3 * 2 + 4) * g.w + 3 * 4 + 4], 255 - 224);
	for (int i = 0; i < g.w * g.h; i++)
		ck_assert(g.px[i] >= 255 - 224 && g.px[i] <= 255 - 16);
	ocr_grey_free(&g);
	img_free(&im);
}
END_TEST

START_TEST(test_prepare_light_ground_kept)
{
	struct img im;
	struct ocr_grey g;

	make(&im, 10, 6, 240, 0, 0, 0);
	ocr_prepare(&im, &g);
	ck_assert(!g.inverted);
	ck_assert_int_eq(g.px[0], 0);
	ck_assert_int_eq(g.px[(size_t)g.h * g.w - 1], 240);
	ocr_grey_free(&g);
	img_free(&im);
}
END_TEST

START_TEST(test_prepare_luma)
{
	struct img im = { 1, 1, xmalloc(3) };
	struct ocr_grey g;

	/* Pure green on its own is brighter than mid grey: not inverted. */
	im.px[0] = 0, im.px[1] = 255, im.px[2] = 0;
	ocr_prepare(&im, &g);
	ck_assert(!g.inverted);
	ck_assert_int_eq(g.px[0], 149);
	ocr_grey_free(&g);
	img_free(&im);
}
END_TEST

/* A tessdata directory with eng, deu, osd and a file that is no language. */
static char dir[64];

static void tessdata_setup(void)
{
	static const char *const files[] = {
		"eng.traineddata", "deu.traineddata", "osd.traineddata", "README", "x y.traineddata",
	};
	char path[128];

	snprintf(dir, sizeof dir, "/tmp/check-ocr.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	for (size_t i = 0; i < ARRAY_LEN(files); i++) {
		FILE *f;
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		f = fopen(path, "w");
		ck_assert_ptr_nonnull(f);
		fclose(f);
	}
	setenv("KVMGATE_TESSDATA", dir, 1);
	ck_assert_int_eq(conf_load(), 0);
}

static void tessdata_teardown(void)
{
	char cmd[96];

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_languages)
{
	struct buf b = BUF_INIT;

	ocr_languages(&b);
	ck_assert_str_eq(b.data, "deu, eng");
	buf_free(&b);
}
END_TEST

START_TEST(test_language_check)
{
	static const struct { const char *lang; int ok; } cases[] = {
		{ "eng", 0 }, { "deu", 0 }, { "eng+deu", 0 }, { "osd", -1 }, { "fra", -1 },
		{ "eng+fra", -1 }, { "", -1 }, { "eng+", -1 }, { "+eng", -1 }, { "en", -1 },
		{ "../eng", -1 }, { "eng deu", -1 }, { "x y", -1 }, { "README", -1 },
	};
	char why[512];

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		why[0] = '\0';
		ck_assert_msg(ocr_language_check(cases[i].lang, why, sizeof why) == cases[i].ok,
		              "'%s'", cases[i].lang);
		if (cases[i].ok < 0)
			ck_assert_msg(strstr(why, "is not installed on this gateway; installed: deu, eng")
			              != NULL, "%s", why);
	}
}
END_TEST

START_TEST(test_tidy)
{
	static const struct {
		const char *in, *out;
		int lines;
	} cases[] = {
		{ "", "", 0 },
		{ "\n\n", "", 0 },
		{ "one\n\ntwo  \n\n\nthree\n\f", "one\ntwo\nthree", 3 },
		{ "  indented\t\n", "  indented", 1 },
		{ "a\r\nb\n", "a\nb", 2 },
	};
	int lines;
	bool cut;

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char *s = strdup(cases[i].in);
		size_t n = ocr_tidy(s, 100, &lines, &cut);
		ck_assert_str_eq(s, cases[i].out);
		ck_assert_uint_eq(n, strlen(cases[i].out));
		ck_assert_int_eq(lines, cases[i].lines);
		ck_assert(!cut);
		free(s);
	}
}
END_TEST

START_TEST(test_tidy_cut_at_a_line)
{
	char s[] = "first line\nsecond line\nthird line\n";
	int lines;
	bool cut;

	/* 21 bytes hold the first line and most of the second: only the first is kept. */
	ck_assert_uint_eq(ocr_tidy(s, 21, &lines, &cut), 10);
	ck_assert_str_eq(s, "first line");
	ck_assert_int_eq(lines, 1);
	ck_assert(cut);
}
END_TEST

static Suite *ocr_suite(void)
{
	Suite *s = suite_create("fcgi_ocr");
	TCase *tc = tcase_create("prepare");
	TCase *lang = tcase_create("languages");

	tcase_add_test(tc, test_upscale_factor);
	tcase_add_test(tc, test_prepare_dark_ground_inverted);
	tcase_add_test(tc, test_prepare_light_ground_kept);
	tcase_add_test(tc, test_prepare_luma);
	tcase_add_test(tc, test_tidy);
	tcase_add_test(tc, test_tidy_cut_at_a_line);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(lang, tessdata_setup, tessdata_teardown);
	tcase_add_test(lang, test_languages);
	tcase_add_test(lang, test_language_check);
	suite_add_tcase(s, lang);
	return s;
}

int main(void)
{
	return check_run(ocr_suite());
}
