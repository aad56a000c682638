package dev.sparkprune.jobs;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The package rules of ARCHITECTURE.md over spark-jobs' main classes: the shared layers import no
 * job, prune's stages do not reach back up to the prune job, shrink and prune do not know each
 * other, and no two packages import each other through any path.
 */
class TestArchitecture {
  private static final String JOBS = "dev.sparkprune.jobs";
  /** The packages that are jobs, or run them. */
  private static final String[] JOB_PACKAGES = {
      JOBS + ".prune..", JOBS + ".shrink..", JOBS + ".eval..", JOBS + ".workflow..", JOBS + ".bench..", JOBS + ".cli.."};

  private static JavaClasses classes;

  @BeforeAll
  static void importMainClasses() {
    classes = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS).importPackages(JOBS);
  }

  @Test
  void theSparkLayerImportsNoJob() {
    noClasses().that().resideInAPackage(JOBS + ".spark..").should().dependOnClassesThat().resideInAnyPackage(JOB_PACKAGES)
        .because("jobs.spark is the skeleton every job runs in").check(classes);
    noClasses().that().resideInAPackage(JOBS + ".spark..").should().dependOnClassesThat()
        .resideInAnyPackage(JOBS + ".options..", JOBS + ".output..", JOBS + ".calibration..", JOBS + ".gradient..", JOBS + ".text..",
            JOBS + ".plan..")
        .because("jobs.spark is the lowest layer of spark-jobs").check(classes);
  }

  @Test
  void theSharedLayersImportNoJob() {
    for (String shared : new String[] {".options..", ".output..", ".calibration..", ".gradient..", ".text..", ".gpu..", ".plan.."}) {
      noClasses().that().resideInAPackage(JOBS + shared).should().dependOnClassesThat().resideInAnyPackage(JOB_PACKAGES)
          .because("shared layers serve every job").check(classes);
    }
  }

  @Test
  void thePlanIsAPureFunctionOfHeadersAndSettings() {
    noClasses().that().resideInAPackage(JOBS + ".plan..").should()
        .dependOnClassesThat(JavaClass.Predicates.resideInAPackage(JOBS + "..").and(JavaClass.Predicates.resideOutsideOfPackage(JOBS + ".plan..")))
        .orShould().dependOnClassesThat().resideInAnyPackage("org.apache.spark..", "org.apache.hadoop..")
        .because("jobs.plan computes the run plan before Spark starts, from headers and settings").check(classes);
  }

  @Test
  void pruneStagesDoNotReachBackToThePruneJob() {
    noClasses().that().resideInAPackage(JOBS + ".prune.(*)..").should().dependOnClassesThat().resideInAPackage(JOBS + ".prune")
        .because("a stage takes what it reads, never the job's options or run").check(classes);
  }

  @Test
  void shrinkAndPruneDoNotKnowEachOther() {
    noClasses().that().resideInAPackage(JOBS + ".shrink..").should().dependOnClassesThat().resideInAPackage(JOBS + ".prune..")
        .because("shrink then prune composes above both, in jobs.workflow").check(classes);
    noClasses().that().resideInAPackage(JOBS + ".prune..").should().dependOnClassesThat().resideInAPackage(JOBS + ".shrink..")
        .check(classes);
  }

  @Test
  void noImportCycleBetweenPackages() {
    slices().matching(JOBS + ".(**)").should().beFreeOfCycles().check(classes);
  }
}
